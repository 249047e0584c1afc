"""A secret typed into the config view shows up in no screen, log, file or environment."""

from __future__ import annotations

import base64
import json
import logging
import os
from pathlib import Path

from textual.widgets import Button, Input

from thinkube_devpi.secrets import Secret

from .conftest import SIZE, Seen, settle, until

TYPED = "s3cr3t-Typed-In-The-TUI-7f9Q"


def forms(value: str) -> list[str]:
    """Every form in which a secret could leak: plain, base64, JSON-escaped."""
    return [value, base64.b64encode(value.encode()).decode(), json.dumps(value)[1:-1]]


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


async def test_a_typed_secret_is_kept_as_a_secret_object_and_shown_nowhere(
    make_app, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)
    app = make_app(plan=True)
    screens: list[str] = []
    seen = Seen()
    async with app.run_test(size=SIZE, notifications=True, message_hook=seen) as pilot:
        await pilot.press("3")
        await until(pilot, lambda: bool(app.screen.query("#secret-DEVPI_ADMIN_PASSWORD")),
                    what="the config view")
        await settle(app, pilot)
        # the config view composes its fields after the switch; under load that takes a moment
        await until(pilot, lambda: bool(app.screen.query("#secret-DEVPI_ADMIN_PASSWORD")), what="fields")
        field = app.screen.query_one("#secret-DEVPI_ADMIN_PASSWORD", Input)
        field.focus()
        await pilot.press(*TYPED[:2])  # typed, masked on screen
        field.value = TYPED
        await pilot.pause()
        screens.append(app.export_screenshot())
        await pilot.press("enter")
        await pilot.pause()
        assert field.value == ""  # never shown again, not even masked
        kept = app.state.ctx.session_secrets["DEVPI_ADMIN_PASSWORD"]
        assert isinstance(kept, Secret) and kept.reveal() == TYPED
        assert "in memory for this run" in str(
            app.screen.query_one("#secret-state-DEVPI_ADMIN_PASSWORD").render()
        )

        # asking for the keyring: stored there, or kept in memory with the reason; either way
        # the value stays out of sight
        other = app.screen.query_one("#secret-KEYCLOAK_ADMIN_PASSWORD", Input)
        other.value = TYPED
        await pilot.click("#keyring-KEYCLOAK_ADMIN_PASSWORD", offset=(2, 0))
        await until(pilot, lambda: "KEYCLOAK_ADMIN_PASSWORD" in app.state.ctx.session_secrets,
                    what="the keyring choice")
        await settle(app, pilot)
        assert other.value == ""
        state = str(app.screen.query_one("#secret-state-KEYCLOAK_ADMIN_PASSWORD").render())
        assert "keyring" in state

        await pilot.press("ctrl+s")  # the settings file is written: no secret in it
        await pilot.pause()
        for view in ("1", "3"):
            await pilot.press(view)
            await pilot.pause()
            screens.append(app.export_screenshot())
        notes = seen.notes()  # every toast, those already gone included
        assert notes  # the keyring choice and the save were each told
        ctx_repr = repr(app.state.ctx)

    assert app.state.config_path.exists()
    for form in forms(TYPED):
        for shot in screens:
            assert form not in shot
        assert form not in caplog.text
        assert form not in ctx_repr
        assert all(form not in n for n in notes)
        assert all(form not in v for v in os.environ.values())
        for path in files_under(tmp_path):
            assert form.encode() not in path.read_bytes(), path


async def test_keyring_button_is_offered_for_each_secret(make_app):
    app = make_app(plan=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await pilot.pause()
        buttons = [b.id for b in app.screen.query(Button)]
        assert "keyring-DEVPI_ADMIN_PASSWORD" in buttons
        assert "keyring-KEYCLOAK_ADMIN_PASSWORD" in buttons
        assert app.screen.query_one("#secret-DEVPI_ADMIN_PASSWORD", Input).password
