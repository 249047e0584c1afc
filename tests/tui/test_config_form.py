"""The config form as a fast typist uses it: bursts of keys, the note, secrets, phase 86's pip."""

from __future__ import annotations

from textual import events
from textual.widgets import Checkbox, Input

from .conftest import SIZE, phases_of, settle, until


def burst(app, keys: list[str]) -> None:
    """Keys as a terminal delivers a burst (tmux send-keys, a fast typist): all queued at once,
    none waiting for the one before it to be handled."""
    for key in keys:
        app.post_message(events.Key(key, key if len(key) == 1 else None))


def typed(text: str) -> list[str]:
    return list(text)


async def test_a_burst_after_a_view_switch_and_tabs_lands_in_the_fields(make_app):
    app = make_app(plan=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        # "3", Tab, clear the domain, type, Tab, type: in one burst, as tmux sends it
        burst(
            app,
            ["3", "tab", *["backspace"] * 11, *typed("abc.example.org"), "tab", *typed("qa")],
        )
        await until(
            pilot,
            lambda: app.focused is not None and app.focused.id == "input-namespace",
            what="the second field",
        )
        await pilot.pause(0.2)
        assert app.screen.query_one("#input-domain", Input).value == "abc.example.org"
        # the "q" typed into a field is a letter, not the quit key
        assert app.screen.query_one("#input-namespace", Input).value == "devpiqa"
        assert app.is_running


async def test_letters_in_a_burst_never_run_commands_before_the_field_has_focus(make_app):
    app = make_app(plan=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        burst(app, ["3", "tab", "tab", *typed("pqrs")])

        def namespace() -> str:
            fields = app.screen.query("#input-namespace").results(Input)
            return next((f.value for f in fields), "")

        await until(pilot, lambda: namespace().endswith("pqrs"), what="the letters in the field")
        assert app.is_running and app.view == "config"


async def test_the_no_settings_file_note_goes_once_saved(make_app, tmp_path):
    path = tmp_path / "new-config.toml"
    app = make_app(config_path=path, config_note=f"No settings file at {path}", plan=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("3")
        await pilot.pause()
        assert app.screen.query("#config-note")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: path.exists(), what="the file")
        await pilot.pause()
        assert not app.screen.query("#config-note")
        await pilot.press("1", "3")  # and it does not come back
        await pilot.pause()
        assert not app.screen.query("#config-note")


async def test_the_secret_fields_are_one_key_away(make_app):
    app = make_app(plan=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("3", "s")
        await pilot.pause()
        assert app.focused is not None and app.focused.id == "secret-DEVPI_ADMIN_PASSWORD"
        await pilot.press("tab", "tab")  # past the Keyring button to the next secret
        assert app.focused is not None and app.focused.id == "secret-KEYCLOAK_ADMIN_PASSWORD"


async def test_phase_86_can_be_asked_to_write_pip_conf_and_uv_toml(make_app, tmp_path):
    app = make_app(plan=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        notes = "\n".join(phases_of(app).plans["shell"].notes)
        assert "pip.conf / uv.toml left alone" in notes
        await pilot.press("3")
        await pilot.pause()
        box = app.screen.query_one("#choice-write_pip_config", Checkbox)
        box.value = True
        await settle(app, pilot)
        assert app.state.ctx.write_pip_config is True
        notes = "\n".join(phases_of(app).plans["shell"].notes)
        assert "pip.conf" in notes and "uv.toml" in notes and "left alone" not in notes
