"""The config view: settings validated as the admin types, secrets, preflight results.

Secrets are typed into masked inputs and never shown again: the input is cleared as soon as the
value is taken, and the value lives only in a :class:`Secret` (in the installer Context for this
run) or in the keyring when the admin asks for that. It is never put into ``os.environ``, where
child processes would inherit it.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Checkbox, Input, Label, Static

from thinkube_devpi.config import ConfigError, Settings, _as_bool
from thinkube_devpi.installer.preflight import Check
from thinkube_devpi.secrets import Secret
from thinkube_devpi.tui import wording
from thinkube_devpi.tui.colors import check_text

SECRET_NAMES: tuple[tuple[str, str], ...] = (
    ("DEVPI_ADMIN_PASSWORD", "devpi admin password"),
    ("KEYCLOAK_ADMIN_PASSWORD", "Keycloak admin password"),
    ("THINKUBE_DEVPI_S3_ACCESS_KEY", "object storage access key (backups)"),
    ("THINKUBE_DEVPI_S3_SECRET_KEY", "object storage secret key (backups)"),
)

# yes/no questions of the local phases, by the Context attribute local_state.flag reads
CHOICES: tuple[tuple[str, str], ...] = (
    ("write_pip_config", "Phase 86: point pip and uv at devpi (pip.conf, uv.toml)"),
    ("store_admin_password", "Phase 85: keep the devpi admin password in the keyring"),
)


def field_value(settings: Settings, name: str) -> str:
    value = getattr(settings, name)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(value)
    return str(value)


def check_field(name: str, text: str) -> str:
    """The error for this value of this field, or '' when it is allowed."""
    f = next(f for f in dataclasses.fields(Settings) if f.name == name)
    try:
        if isinstance(f.default, bool):
            _as_bool(name, text)
        else:
            check = f.metadata.get("check")
            if check is not None:
                check(name, text)
    except ConfigError as exc:
        return f"not allowed: {exc.allowed}"
    return ""


class ConfigView(Horizontal):
    """Left: every setting with its help and error. Right: secrets and preflight."""

    class SecretEntered(Message):
        """The admin typed a secret and chose where to keep it. Carries a Secret, never a str."""

        def __init__(self, name: str, secret: Secret, keyring: bool) -> None:
            self.name = name
            self.secret = secret
            self.keyring = keyring
            super().__init__()

    class ChoiceChanged(Message):
        """A yes/no for this run (write pip.conf/uv.toml in phase 86, keep the admin password
        in the keyring in phase 85): set on the installer Context by that name."""

        def __init__(self, name: str, value: bool) -> None:
            self.name = name
            self.value = value
            super().__init__()

    def __init__(self, settings: Settings, note: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.note = note
        self.errors: dict[str, str] = {}
        self.secret_state: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        # the form is composed with the view, not mounted after it: keys typed in a burst
        # right after the view opens land in its fields instead of running commands
        with VerticalScroll(id="settings-form") as form:
            form.border_title = "Settings"
            if self.note:
                yield Static(Text(self.note, style="#ffaf00"), id="config-note")
            yield from self._form()
        with Vertical(id="config-side"):
            with Vertical(id="secrets-box") as box:
                box.border_title = "Secrets (s)"
                for name, label in SECRET_NAMES:
                    yield Label(f"{label} ({name})", classes="secret-label")
                    yield Static(
                        self._secret_line(name), id=f"secret-state-{name}", classes="secret-state"
                    )
                    with Horizontal(classes="secret-row"):
                        yield Input(
                            password=True,
                            placeholder="type, then Enter (this run only)",
                            id=f"secret-{name}",
                            classes="secret-input",
                        )
                        yield Button(
                            "Keyring",
                            id=f"keyring-{name}",
                            classes="keyring-button",
                            tooltip="Store it in the system keyring",
                        )
            with Vertical(id="choices-box") as choices:
                choices.border_title = "This run"
                for name, label in CHOICES:
                    yield Checkbox(label, False, id=f"choice-{name}", classes="choice")
            with VerticalScroll(id="preflight-box") as pre:
                pre.border_title = "Preflight (p)"
                yield Static(Text("not run yet: press p", style="#8a8a8a"), id="preflight")

    BINDINGS = [
        Binding(
            "s",
            "focus_secrets",
            "Secrets",
            id="config-secrets",
            tooltip="Jump to the secret fields (typed for this run, or kept in the keyring)",
        ),
        Binding(
            "escape",
            "leave_field",
            "Leave field",
            show=False,
            id="config-leave-field",
            tooltip="Stop editing: keys switch views again",
        ),
    ]

    def focus_form(self) -> None:
        """Focus the form, not a field: 1/2/3 keep switching views until a field is entered."""
        forms = self.query("#settings-form").results(VerticalScroll)
        form = next(forms, None)
        if form is None:  # mounted but not composed yet (a busy machine): after the next refresh
            self.call_after_refresh(self.focus_form)
            return
        # at once, not after the keys already queued (tui/keys.py)
        self.screen.set_focus(form)

    def action_leave_field(self) -> None:
        self.focus_form()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Esc on the form itself (no field entered) is the app's "back"
        if action == "leave_field":
            focused = self.app.focused
            return focused is not None and focused.id != "settings-form"
        return True

    def action_focus_secrets(self) -> None:
        """The secrets are two fields below 25 settings: ``s`` jumps there."""
        self.screen.set_focus(self.query_one(f"#secret-{SECRET_NAMES[0][0]}", Input))

    def _form(self) -> ComposeResult:
        for f in dataclasses.fields(Settings):
            yield Horizontal(
                Label(f.name, classes="setting-name"),
                Input(
                    field_value(self.settings, f.name),
                    placeholder=f.metadata.get("help", ""),
                    id=f"input-{f.name}",
                    classes="setting-input",
                    select_on_focus=False,
                ),
                classes="setting-row",
            )
            yield Static("", id=f"error-{f.name}", classes="setting-error")

    def saved(self, path: object) -> None:
        """The settings file now exists: the note about it missing (or broken) goes."""
        self.note = ""
        for note in self.query("#config-note"):
            note.remove()
        self.settings_path = path

    @on(Checkbox.Changed, ".choice")
    def _choice(self, event: Checkbox.Changed) -> None:
        event.stop()
        name = (event.checkbox.id or "").removeprefix("choice-")
        self.post_message(self.ChoiceChanged(name, event.value))

    # -- validation as the admin types

    @on(Input.Changed, ".setting-input")
    def _validate(self, event: Input.Changed) -> None:
        name = (event.input.id or "").removeprefix("input-")
        error = check_field(name, event.value)
        self.errors[name] = error
        event.input.set_class(bool(error), "-invalid")
        widget = self.query_one(f"#error-{name}", Static)
        widget.update(Text(error, style="#ff5f5f"))
        widget.set_class(bool(error), "-shown")

    def values(self) -> dict[str, object]:
        """The form as a mapping for ``config.from_mapping`` (empty means unset)."""
        out: dict[str, object] = {}
        for f in dataclasses.fields(Settings):
            text = self.query_one(f"#input-{f.name}", Input).value.strip()
            if text:
                out[f.name] = text
        return out

    def show_error(self, name: str, error: str) -> None:
        try:
            widget = self.query_one(f"#error-{name}", Static)
        except Exception:
            return
        widget.update(Text(error, style="#ff5f5f"))
        widget.add_class("-shown")
        self.query_one(f"#input-{name}", Input).add_class("-invalid")

    # -- secrets

    def _secret_line(self, name: str) -> Text:
        where = self.secret_state.get(name)
        if where:
            return Text(f"set: {where}", style="#5fd75f")
        if os.environ.get(name):
            return Text(f"set: from {name} in the environment", style="#5fd75f")
        return Text("not set", style="#8a8a8a")

    def set_secret_state(self, name: str, where: str, ok: bool = True) -> None:
        if ok:
            self.secret_state[name] = where
            line = self._secret_line(name)
        else:
            line = Text(where, style="#ff5f5f")
        self.query_one(f"#secret-state-{name}", Static).update(line)

    def _take(self, name: str, keyring: bool) -> None:
        field = self.query_one(f"#secret-{name}", Input)
        if not field.value:
            return
        secret = Secret(field.value, source="typed in the TUI")
        field.value = ""  # never shown again, not even masked
        self.post_message(self.SecretEntered(name, secret, keyring))

    @on(Input.Submitted, ".secret-input")
    def _secret_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._take((event.input.id or "").removeprefix("secret-"), keyring=False)

    @on(Button.Pressed, ".keyring-button")
    def _keyring_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self._take((event.button.id or "").removeprefix("keyring-"), keyring=True)

    # -- preflight

    def show_preflight(self, checks: list[Check] | None) -> None:
        widget = self.query_one("#preflight", Static)
        if checks is None:
            widget.update(Text("checking…", style="italic #8a8a8a"))
            return
        table = Table(box=None, show_header=False, expand=True, padding=(0, 1))
        table.add_column(no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column(overflow="fold")
        for check in checks:
            detail = Text(wording.text(check.detail), style="#d0d0d0")
            if check.ok is False and check.hint:
                detail.append(f"\n→ {wording.text(check.hint)}", style="#ffaf00")
            table.add_row(check_text(check.ok), check.name, detail)
        widget.update(table)
