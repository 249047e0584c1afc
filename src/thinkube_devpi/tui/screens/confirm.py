"""Confirmation modals: roll back a phase, quit while a phase runs."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static


@dataclass(frozen=True)
class RollbackChoice:
    """The admin said yes. ``delete_package_data`` is the typed namespace name, or None."""

    delete_package_data: str | None = None


class ConfirmRollback(ModalScreen[RollbackChoice | None]):
    """Roll back a phase? Deleting package data needs the namespace name typed in full."""

    CSS_PATH = "confirm.tcss"

    BINDINGS = [
        Binding("escape", "no", "Cancel", id="rollback-cancel", tooltip="Keep everything"),
        Binding("n", "no", "No", show=False, id="rollback-no", tooltip="Keep everything"),
    ]

    def __init__(self, label: str, objects: list[str], namespace: str, offers_data: bool) -> None:
        super().__init__()
        self.label = label
        self.objects = objects
        self.namespace = namespace
        self.offers_data = offers_data

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog") as box:
            box.border_title = f"Roll back phase {self.label}?"
            yield Static(
                "This deletes what the phase made (objects that are ours and not adopted):",
                classes="dialog-text",
            )
            listing = "\n".join(f"  • {o}" for o in self.objects) or "  (nothing to delete)"
            yield Static(listing, id="rollback-objects")
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

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Checkbox.Changed, "#delete-data")
    def _toggle_data(self, event: Checkbox.Changed) -> None:
        field = self.query_one("#confirm-namespace", Input)
        field.disabled = not event.value
        if event.value:
            field.focus()
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
