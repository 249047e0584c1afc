"""Confirmation modals: roll back (listing what goes and stays), run, quit while a phase runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static


@dataclass(frozen=True)
class RollbackChoice:
    """The admin said yes. ``delete_package_data`` is the typed namespace name, or None."""

    delete_package_data: str | None = None


class ConfirmRollback(ModalScreen[RollbackChoice | None]):
    """Roll back? Lists what goes and what stays, read from the cluster before asking; deleting
    the package data needs the namespace name typed in full (and the listing then says so)."""

    CSS_PATH = "confirm.tcss"

    BINDINGS = [
        Binding("escape", "no", "Cancel", id="rollback-cancel", tooltip="Keep everything"),
        Binding("n", "no", "No", show=False, id="rollback-no", tooltip="Keep everything"),
    ]

    def __init__(
        self,
        label: str,
        listing: list[str],
        namespace: str,
        listing_with_data: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.label = label
        self.listing = listing
        self.listing_with_data = listing_with_data
        self.namespace = namespace
        self.offers_data = listing_with_data is not None

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog") as box:
            box.border_title = f"Roll back {self.label}?"
            yield Static(
                "Only objects thinkube-devpi made and did not adopt are deleted:",
                classes="dialog-text",
            )
            with VerticalScroll(id="rollback-scroll"):
                yield Static(self._listing(self.listing), id="rollback-objects")
            if self.offers_data:
                yield Static(
                    "The package data (the PVC and everything uploaded) is kept unless you ask.",
                    classes="dialog-text",
                )
                yield Checkbox("Also delete the package data", id="delete-data")
                yield Input(
                    placeholder=f"type {self.namespace} to confirm deleting the package data",
                    id="confirm-namespace",
                    disabled=True,
                )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Roll back", variant="error", id="yes")
                yield Button("Cancel", variant="primary", id="no")

    @staticmethod
    def _listing(lines: list[str]) -> Text:
        out = Text()
        for i, line in enumerate(lines):
            if i:
                out.append("\n")
            stripped = line.strip()
            if stripped in ("deletes:", "keeps:"):
                out.append(line, style="bold #ff8700" if stripped == "deletes:" else "bold #87afd7")
            else:
                out.append(line)
        return out or Text("(nothing to delete)")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Checkbox.Changed, "#delete-data")
    def _toggle_data(self, event: Checkbox.Changed) -> None:
        field = self.query_one("#confirm-namespace", Input)
        field.disabled = not event.value
        if event.value:
            field.focus()
        lines = self.listing_with_data if event.value and self.listing_with_data else self.listing
        self.query_one("#rollback-objects", Static).update(self._listing(lines))
        self._update_yes()

    @on(Input.Changed, "#confirm-namespace")
    def _typed(self) -> None:
        self._update_yes()

    def _wants_data_deleted(self) -> bool:
        return self.offers_data and self.query_one("#delete-data", Checkbox).value

    def _update_yes(self) -> None:
        ok = True
        if self._wants_data_deleted():
            ok = self.query_one("#confirm-namespace", Input).value == self.namespace
        self.query_one("#yes", Button).disabled = not ok

    @on(Button.Pressed, "#yes")
    def _yes(self) -> None:
        if self._wants_data_deleted():
            if self.query_one("#confirm-namespace", Input).value != self.namespace:
                return
            self.dismiss(RollbackChoice(delete_package_data=self.namespace))
        else:
            self.dismiss(RollbackChoice())

    @on(Button.Pressed, "#no")
    def action_no(self) -> None:
        self.dismiss(None)


class ConfirmRun(ModalScreen[frozenset[str] | None]):
    """Run phases? A single letter never writes to the cluster without this question; the
    listing says what each phase would create or change (a run never deletes). ``offers`` are
    run options (:data:`~thinkube_devpi.tui.wording.RUN_OPTIONS`) shown as tick boxes, never
    ticked for the admin; the answer is the set of those ticked, or None for no."""

    CSS_PATH = "confirm.tcss"

    BINDINGS = [
        Binding("escape,n", "no", "Cancel", id="run-cancel", tooltip="Run nothing"),
        Binding("y", "yes", "Run", id="run-yes", tooltip="Run it"),
    ]

    def __init__(self, title: str, lines: list[str], offers: Sequence[str] = ()) -> None:
        super().__init__()
        self.title_text = title
        self.lines = lines
        self.offers = list(offers)

    def compose(self) -> ComposeResult:
        from thinkube_devpi.tui.wording import RUN_OPTIONS

        with Vertical(id="dialog", classes="run") as box:
            box.border_title = self.title_text
            with VerticalScroll(id="rollback-scroll"):
                yield Static("\n".join(self.lines) or "(nothing to do)", id="run-listing")
            for option in self.offers:
                yield Checkbox(RUN_OPTIONS[option], False, id=f"option-{option}")
            yield Static("A run never deletes anything. y runs, n or Esc cancels.",
                         classes="dialog-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Run", variant="success", id="yes")
                yield Button("Cancel", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed, "#yes")
    def action_yes(self) -> None:
        ticked = {o for o in self.offers if self.query_one(f"#option-{o}", Checkbox).value}
        self.dismiss(frozenset(ticked))

    @on(Button.Pressed, "#no")
    def action_no(self) -> None:
        self.dismiss(None)


class ConfirmQuit(ModalScreen[bool]):
    """Quit while a phase runs? The phase is cancelled; a re-run repairs what is half done."""

    CSS_PATH = "confirm.tcss"

    BINDINGS = [
        Binding("escape,n", "stay", "Stay", id="quit-stay", tooltip="Keep the phase running"),
        Binding("y", "leave", "Quit", id="quit-yes", tooltip="Cancel the phase and quit"),
    ]

    def __init__(self, running: str) -> None:
        super().__init__()
        self.running = running

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog") as box:
            box.border_title = "Quit while a phase runs?"
            yield Label(f"Phase {self.running} is running.", classes="dialog-text")
            yield Static(
                "Quitting cancels it between two steps. Nothing is left half-written that a "
                "re-run of the phase does not repair.",
                classes="dialog-text",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel the phase and quit", variant="error", id="yes")
                yield Button("Stay", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed, "#yes")
    def action_leave(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#no")
    def action_stay(self) -> None:
        self.dismiss(False)
