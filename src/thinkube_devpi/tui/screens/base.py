"""What every view's Screen has: the header, the `/` and `:` prompt line, the key bar, j/k, Esc.

A view is one Screen (an App mode, switched with 1/2/3 or `:name`). It composes its widgets
between the header and the prompt, owns the keys and workers of its view, and reads what it
shares with the others from :class:`~thinkube_devpi.tui.state.TuiState`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from textual import events, on
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Input
from textual.worker import Worker, WorkerState

from thinkube_devpi.errors import Error
from thinkube_devpi.installer.runner import describe_error
from thinkube_devpi.tui import wording
from thinkube_devpi.tui.commands import COMMANDS, FOOTER_ORDER, hints, screen_bindings
from thinkube_devpi.tui.widgets.header import KubeHeader
from thinkube_devpi.tui.widgets.keybar import KeyBar

if TYPE_CHECKING:
    from textual.app import App
    from textual.binding import ActiveBinding
    from textual.geometry import Size

    from thinkube_devpi.tui.state import TuiState, ViewHost


def describe(exc: BaseException) -> tuple[str, str]:
    """(message, hint) in the TUI's words: a setting is fixed in the Config view, where the
    command line's hint would name a command or a flag."""
    message, hint = describe_error(exc)
    return message, wording.hint(hint, exc.setting if isinstance(exc, Error) else "")


def report_failure(app: App[Any], worker: Worker[object]) -> tuple[str, str]:
    """A worker raised: say so in a toast (what, and what to do); returns (message, hint)."""
    message, hint = describe(worker.error) if worker.error else ("failed", "")
    app.notify(
        f"{message}\n{hint}".strip(),
        title=worker.description or "Error",
        severity="error",
        timeout=10,
    )
    return message, hint


class ViewScreen(Screen[None]):
    """One view: header, the view's widgets (``compose_view``), the prompt line, the footer."""

    VIEW: ClassVar[str] = ""
    HELP_EXTRA: ClassVar[list[tuple[str, str]]] = []  # keys the view's widgets bind themselves
    BINDINGS = screen_bindings()  # a view adds its own: view_bindings(VIEW)

    def __init__(self) -> None:
        super().__init__(id=f"{self.VIEW}-screen")
        self.prompt_mode = ""  # "filter" or "command" while the prompt line is open
        self._sized_for: Size | None = None

    @property
    def host(self) -> ViewHost:
        return cast("ViewHost", self.app)

    @property
    def state(self) -> TuiState:
        return self.host.state

    @property
    def header(self) -> KubeHeader:
        return self.query_one(KubeHeader)

    def compose(self) -> ComposeResult:
        header = KubeHeader(id="header")
        header.view = self.VIEW
        yield header
        yield from self.compose_view()
        # `/` filter and `:` command mode, k9s-style: one line above the footer, while in use
        prompt = Input(id="prompt")
        # never focused while hidden (not even by the screen's first auto-focus)
        prompt.display = False
        prompt.can_focus = False
        yield prompt
        yield KeyBar()

    def compose_view(self) -> ComposeResult:
        raise NotImplementedError

    def on_mount(self) -> None:
        # Textual runs every class's on_mount: a view's own runs too
        self.state.changed.subscribe(self, self.sync_header)
        self.sync_header()

    @property
    def closing(self) -> bool:
        """True once the app is closing: a worker's late result then has nowhere to go."""
        return not self.is_attached

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            report_failure(self.app, event.worker)

    def sync_header(self, _: object = None) -> None:
        """The header shows the shared connection state; the hints what can run now."""
        header = self.header
        for name, value in self.state.header.items():
            setattr(header, name, value)
        header.connection = self.state.connection
        self.update_hints()

    def update_hints(self) -> None:
        """The header's key hints and the key bar follow what can run now. A key is hinted
        exactly when the key bar shows it enabled; the bindings are refreshed (the key bar
        redrawn) only when the hints change."""
        shown = []
        for key, label in hints(self.VIEW):
            command = next((c for c in COMMANDS if c.label == label), None)
            if command is not None and not self.check_action(command.action.split("(")[0], ()):
                continue
            shown.append((key, label))
        header = self.header
        if tuple(shown) != header.hints:
            first = not header.hints  # the key bar reads its first keys when it is drawn
            header.hints = tuple(shown)
            if not first:
                self.refresh_bindings()

    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        """As Textual finds them (the view's, then the App's), in the order of COMMANDS: the
        footer lists the keys in one order wherever they are bound."""
        found = super().active_bindings
        last = len(FOOTER_ORDER)
        return dict(
            sorted(found.items(), key=lambda kv: FOOTER_ORDER.get(kv[1].binding.id or "", last))
        )

    def on_resize(self, event: events.Resize) -> None:
        self._sized_for = event.size

    def on_screen_resume(self) -> None:
        # a view that was not shown when the terminal changed size sets its breakpoint classes
        # (app.tcss: -narrow, -short) now
        if self._sized_for is not None and self._sized_for != self.app.size:
            self.post_message(events.Resize.from_dimensions(self.app.size, None))

    # -- shown, focus, filter: each view says what they mean for it

    def shown(self) -> None:
        """The view was switched to (1/2/3, `:`, Esc): focus its main widget."""
        self.focus_view()

    def focus_view(self) -> None:
        raise NotImplementedError

    @property
    def filter_text(self) -> str:
        return ""

    def set_filter(self, text: str) -> None:
        """`/`: show the rows that hold ``text`` (views with lists override this)."""

    # -- the prompt line

    @property
    def prompt(self) -> Input:
        return self.query_one("#prompt", Input)

    def open_prompt(self, mode: str, placeholder: str) -> None:
        prompt = self.prompt
        prompt.display = True
        prompt.can_focus = True
        prompt.set_class(mode == "filter", "-filter")
        prompt.value = self.filter_text if mode == "filter" else ""
        prompt.placeholder = placeholder
        prompt.border_title = mode
        self.prompt_mode = mode
        # at once, not after the keys already queued: "/redis" types into the prompt
        self.set_focus(prompt)

    def close_prompt(self) -> None:
        self.prompt.display = False
        self.prompt.can_focus = False
        self.prompt_mode = ""
        self.focus_view()

    def action_filter(self) -> None:
        self.open_prompt("filter", "/ filter: type to show matching rows, Enter keeps, Esc clears")

    @on(Input.Changed, "#prompt")
    def _prompt_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self.prompt_mode == "filter":
            self.set_filter(event.value.strip())

    @on(Input.Submitted, "#prompt")
    async def _prompt_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        mode, text = self.prompt_mode, event.value.strip().lstrip(":/")
        self.close_prompt()
        if mode == "command" and text:
            await self.host.go_to(text)

    # -- k9s habits that act inside the view

    def action_cursor(self, direction: str) -> None:
        """j/k: down/up in the focused list or table."""
        method = getattr(self.focused, f"action_cursor_{direction}", None)
        if callable(method):
            method()

    async def action_back(self) -> None:
        """Esc: close the prompt (a filter is cleared), else clear a filter, else the view
        before this one."""
        if self.prompt_mode:
            if self.prompt_mode == "filter":
                self.set_filter("")
            self.close_prompt()
            return
        if self.filter_text:
            self.set_filter("")
            return
        await self.host.go_back()
