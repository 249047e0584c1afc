"""The one way files are replaced: atomically, through a symlink, keeping the file's mode."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from thinkube_devpi import paths


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_is_readable_by_others_unless_made_private(tmp_path: Path) -> None:
    paths.atomic_write(tmp_path / "a" / "helpers.toml", "x = 1\n")
    paths.atomic_write(tmp_path / "sessions.json", "{}", mode=0o600)
    assert (tmp_path / "a" / "helpers.toml").read_text() == "x = 1\n"
    assert mode(tmp_path / "a" / "helpers.toml") == 0o644
    assert mode(tmp_path / "sessions.json") == 0o600


def test_replacing_keeps_the_mode_the_user_gave_the_file(tmp_path: Path) -> None:
    target = tmp_path / "uv.toml"
    target.write_text("old\n")
    target.chmod(0o640)
    paths.atomic_write(target, "new\n")
    assert target.read_text() == "new\n"
    assert mode(target) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["uv.toml"]  # no temporary file left


def test_a_symlinked_dotfile_is_written_through_and_stays_a_link(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "pip.conf"
    real.parent.mkdir()
    real.write_text("[global]\n")
    link = tmp_path / "pip.conf"
    link.symlink_to(real)
    paths.atomic_write(link, "[global]\nindex-url = x\n")
    assert link.is_symlink()
    assert real.read_text() == "[global]\nindex-url = x\n"


def test_a_failed_write_leaves_the_old_file_and_no_debris(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "config.toml"
    target.write_text("domain = 'a'\n")

    def refuse(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError):
        paths.atomic_write(target, "domain = 'b'\n")
    assert target.read_text() == "domain = 'a'\n"
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]


def test_env_overrides_name_the_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THINKUBE_DEVPI_CONFIG", str(tmp_path / "c.toml"))
    monkeypatch.setenv("THINKUBE_DEVPI_HELPERS_CONFIG", str(tmp_path / "h.toml"))
    monkeypatch.setenv("THINKUBE_DEVPI_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert paths.config_file() == tmp_path / "c.toml"
    assert paths.helpers_file() == tmp_path / "h.toml"
    assert paths.runs_dir() == tmp_path / "state" / "runs"
    assert paths.fish_dir() == tmp_path / "xdg" / "fish"


def test_saving_settings_keeps_the_admins_comments(tmp_path: Path) -> None:
    from thinkube_devpi import config

    path = tmp_path / "config.toml"
    config.save(config.from_mapping({"domain": "one.example"}, source="test"), path)
    text = path.read_text().replace(
        'domain = "one.example"', '# our lab cluster\ndomain = "one.example"  # ask Ana first'
    )
    path.write_text(text)
    settings = config.load(path)
    config.save(config.from_mapping({"domain": "two.example"}, source="test"), path)
    after = path.read_text()
    assert '# our lab cluster\ndomain = "two.example"  # ask Ana first' in after
    assert config.load(path).namespace == settings.namespace
