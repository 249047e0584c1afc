"""`?`: every key of the current view, k9s-style. Esc (or ?) closes it."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class HelpScreen(ModalScreen[None]):
    """The keys of one view: its own commands, then those that work everywhere."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    #help {
        width: 84;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    """

    BINDINGS = [
        Binding("escape,question_mark,q", "close", "Close", id="help-close", tooltip="Back"),
    ]

    def __init__(self, view: str, rows: list[tuple[str, str]]) -> None:
        super().__init__()
        self.view = view
        self.rows = rows

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold #5fafff", no_wrap=True)
        table.add_column(style="#d0d0d0")
        for key, what in self.rows:
            table.add_row(key, what)
        with VerticalScroll(id="help") as box:
            box.border_title = f"Keys: {self.view} view"
            box.border_subtitle = "esc closes"
            yield Static(table, id="help-keys")

    def action_close(self) -> None:
        self.dismiss(None)
