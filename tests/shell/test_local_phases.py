"""Installer phases 85 (helper configuration) and 86 (fish, pip/uv) on this machine."""

from __future__ import annotations

import pytest

from thinkube_devpi import secrets
from thinkube_devpi.config import Settings
from thinkube_devpi.installer.events import Event, State
from thinkube_devpi.installer.phases import PHASES
from thinkube_devpi.installer.phases.base import Context
from thinkube_devpi.installer.phases.p85_cli import CliPhase
from thinkube_devpi.installer.phases.p86_shell import ShellPhase
from thinkube_devpi.shell import settings as helper_settings
from thinkube_devpi.shell.session import password_key


def make_ctx(**flags: bool) -> Context:
    ctx = Context(Settings(domain="example.com").validate())
    for name, value in flags.items():
        setattr(ctx, name, value)
    return ctx


def test_phases_are_discovered_and_local():
    classes = {cls.number: cls for cls in PHASES}
    assert classes[85] is CliPhase and classes[86] is ShellPhase
    assert not CliPhase.needs_cluster and not ShellPhase.needs_cluster


def test_phase_85_writes_helpers_toml_and_keeps_the_password_when_agreed(helpers_home, monkeypatch):
    monkeypatch.setenv("DEVPI_ADMIN_PASSWORD", "adm1n-pw")
    path = helper_settings.config_path()
    path.write_text('url = "https://old.example/"\nuser = "me"\nindex = "me/dev"\n')
    events: list[Event] = []
    phase = CliPhase(make_ctx(store_admin_password=True))
    assert any("update" in n for n in phase.plan().notes)
    assert phase.status().state is State.PROGRESSING
    phase.apply(events.append)
    assert helper_settings.read_helper_config() == {
        "url": "https://devpi-api.example.com/",
        "user": "admin",
        "index": "admin/prod",
    }
    key = password_key("https://devpi-api.example.com/", "admin")
    monkeypatch.delenv("DEVPI_ADMIN_PASSWORD")
    assert secrets.lookup(key, interactive=False) == "adm1n-pw"
    assert phase.status().state is State.HEALTHY
    phase.apply(events.append)  # again: nothing changes
    assert all("adm1n-pw" not in repr(e) for e in events)

    phase.rollback(events.append)
    assert "old.example" in path.read_text()
    assert secrets.lookup(key, interactive=False) is None
    assert not list(path.parent.glob("helpers.toml.bak-*"))


def test_phase_85_without_consent_stores_no_password(helpers_home, monkeypatch):
    monkeypatch.setenv("DEVPI_ADMIN_PASSWORD", "adm1n-pw")
    phase = CliPhase(make_ctx(store_admin_password=False))
    assert phase.status().state is State.MISSING
    phase.apply(lambda e: None)
    assert phase.status().state is State.HEALTHY
    monkeypatch.delenv("DEVPI_ADMIN_PASSWORD")
    key = password_key("https://devpi-api.example.com/", "admin")
    assert secrets.lookup(key, interactive=False) is None
    phase.rollback(lambda e: None)
    assert not helper_settings.config_path().exists()


def test_phase_86_installs_fish_and_pip_config_and_rolls_back(helpers_home):
    pip_conf = helpers_home / ".config" / "pip" / "pip.conf"
    pip_conf.parent.mkdir(parents=True)
    pip_conf.write_text("[global]\nindex-url = https://pypi.org/simple/\ntimeout = 30\n")
    phase = ShellPhase(make_ctx(write_pip_config=True))
    assert phase.status().state is State.MISSING
    phase.apply(lambda e: None)
    assert phase.status().state is State.HEALTHY
    assert (helpers_home / ".config" / "fish" / "functions" / "devpi-use-prod.fish").exists()
    text = pip_conf.read_text()
    assert "https://devpi-api.example.com/admin/prod/+simple/" in text and "timeout = 30" in text
    assert (helpers_home / ".config" / "uv" / "uv.toml").exists()

    phase.rollback(lambda e: None)
    assert not (helpers_home / ".config" / "fish").exists()
    assert pip_conf.read_text() == "[global]\nindex-url = https://pypi.org/simple/\ntimeout = 30\n"
    assert not (helpers_home / ".config" / "uv" / "uv.toml").exists()
    assert phase.status().state is State.MISSING


def test_phase_86_killed_while_writing_pip_conf_still_restores_the_original(
    helpers_home, monkeypatch
):
    """The backup is recorded before pip.conf is replaced: a kill right then (here: the write
    itself raising) leaves a record that rollback uses to put the user's own file back."""
    from thinkube_devpi import paths
    from thinkube_devpi.shell import pipconf

    conf = paths.xdg_config_home() / "pip" / "pip.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    original = "[global]\nindex-url = https://mirror.example/simple/\ntimeout = 7\n"
    conf.write_text(original)
    conf.chmod(0o600)
    real_write = paths.atomic_write

    def killed(path, text, **kw):  # the process dies while replacing pip.conf
        if path == conf:
            real_write(path, text, **kw)
            raise KeyboardInterrupt
        return real_write(path, text, **kw)

    monkeypatch.setattr(pipconf.paths, "atomic_write", killed)
    phase = ShellPhase(make_ctx(write_pip_config=True))
    with pytest.raises(KeyboardInterrupt):
        phase.apply(lambda e: None)
    monkeypatch.setattr(pipconf.paths, "atomic_write", real_write)
    assert "devpi-api.example.com" in conf.read_text()  # it was replaced ...
    phase.rollback(lambda e: None)
    assert conf.read_text() == original  # ... and the user's own file came back
    assert conf.stat().st_mode & 0o777 == 0o600
