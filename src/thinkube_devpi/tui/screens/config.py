"""The config view: the settings form, secrets for this run (or the keyring), preflight checks.

Saving validates every field first and writes nothing while one is wrong; the saved settings
then hold for every view (the phases are built again for them). Secrets typed here stay in
memory as ``Secret`` objects, or go to the keyring when asked: never to a screen or a file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult

from thinkube_devpi import config
from thinkube_devpi.config import ConfigError
from thinkube_devpi.tui.commands import view_bindings
from thinkube_devpi.tui.messages import PreflightDone, SecretKept
from thinkube_devpi.tui.screens.base import ViewScreen

if TYPE_CHECKING:
    from thinkube_devpi.tui.widgets.config import ConfigView


class ConfigScreen(ViewScreen):
    """Settings, secrets and preflight; built the first time it is shown."""

    VIEW = "config"
    BINDINGS = view_bindings(VIEW)
    HELP_EXTRA: ClassVar[list[tuple[str, str]]] = [
        ("s", "Jump to the secret fields"),
        ("tab", "Next field; every setting is validated as you type"),
        ("esc", "Leave the field (then 1 2 3 switch views again)"),
    ]

    def compose_view(self) -> ComposeResult:
        from thinkube_devpi.tui.widgets.config import ConfigView

        yield ConfigView(self.state.settings, self.state.config_note, id="config-view")

    @property
    def config_view(self) -> ConfigView:
        from thinkube_devpi.tui.widgets.config import ConfigView

        return self.query_one(ConfigView)

    def focus_view(self) -> None:
        self.config_view.focus_form()

    # -- preflight

    def action_preflight(self) -> None:
        self.config_view.show_preflight(None)
        self.run_preflight()

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="preflight",
        description="Preflight checks",
    )
    def run_preflight(self) -> None:
        self.post_message(PreflightDone(self.state.session.preflight()))

    @on(PreflightDone)
    def _preflight_done(self, message: PreflightDone) -> None:
        if not self.closing:
            self.config_view.show_preflight(message.checks)

    # -- saving

    def action_save_config(self) -> None:
        view = self.config_view
        if any(view.errors.values()):
            bad = next(k for k, v in view.errors.items() if v)
            self.notify(f"{bad}: {view.errors[bad]}", title="Not saved", severity="error")
            return
        try:
            settings = config.from_mapping(view.values(), source="the config view")
        except ConfigError as exc:
            view.show_error(exc.field, f"not allowed: {exc.allowed}")
            self.notify(str(exc), title="Not saved", severity="error")
            return
        path = config.save(settings, self.state.config_path)
        self.notify(f"Saved to {path}", title="Settings")
        view.saved(path)
        self.state.config_note = ""
        self.state.use_settings(settings)

    # -- this run's choices and secrets

    def on_config_view_choice_changed(self, message: Any) -> None:
        # read by local_state.flag as a Context attribute; the plans of 85/86 say what changes
        setattr(self.state.ctx, message.name, message.value)
        self.state.refresh_phases()

    def on_config_view_secret_entered(self, message: Any) -> None:
        # in memory for this run, as a Secret; never os.environ
        self.state.ctx.session_secrets[message.name] = message.secret
        if message.keyring:
            self.config_view.set_secret_state(message.name, "storing in the keyring…")
            self.store_secret(message.name, message.secret)
        else:
            self.config_view.set_secret_state(message.name, "in memory for this run")

    @work(
        thread=True,
        exclusive=False,
        exit_on_error=False,
        group="keyring",
        description="Storing a secret in the keyring",
    )
    def store_secret(self, name: str, secret: Any) -> None:
        from thinkube_devpi import secrets

        try:
            backend = secrets.store(name, secret)
        except Exception as exc:  # messages from secrets never hold the value
            self.post_message(
                SecretKept(name, f"not stored: {exc}; kept in memory for this run", False)
            )
            return
        self.post_message(SecretKept(name, f"in the keyring ({backend})"))

    @on(SecretKept)
    def _secret_kept(self, message: SecretKept) -> None:
        if not self.closing:
            self.config_view.set_secret_state(message.name, message.where, message.ok)
