"""Where settings come from, and what pip-config writes."""

from __future__ import annotations

import json

from shell.conftest import as_json
from thinkube_devpi.shell import settings


def test_precedence_flags_then_devpi_env_then_file_then_defaults(helpers_home, monkeypatch, tk):
    assert settings.resolve(url="https://a.example/").user == "admin"
    assert settings.resolve(url="https://a.example/").index == "admin/prod"
    settings.write_helper_config("https://file.example", "fileuser", "fileuser/prod")
    cfg = settings.resolve()
    assert (cfg.url, cfg.user, cfg.index) == ("https://file.example/", "fileuser", "fileuser/prod")
    monkeypatch.setenv("DEVPI_USER", "envuser")
    monkeypatch.setenv("DEVPI_INDEX", "https://env.example/sub/envuser/dev")
    cfg = settings.resolve()
    assert (cfg.url, cfg.user, cfg.index) == ("https://env.example/sub/", "envuser", "envuser/dev")
    assert cfg.source_of("user") == "DEVPI_USER"
    cfg = settings.resolve("https://flag.example/", "flaguser", "flaguser/x")
    assert (cfg.url, cfg.user, cfg.index) == ("https://flag.example/", "flaguser", "flaguser/x")
    assert cfg.source_of("index") == "--index"
    out = as_json(tk("env", "-o", "json", "--index", "flaguser/x", ok=True))
    assert out["PIP_INDEX_URL"] == "https://env.example/sub/flaguser/x/+simple/"
    assert "set -gx UV_DEFAULT_INDEX" in tk("env", "-o", "fish", ok=True).stdout
    assert tk("env", "--get", "DEVPI_USER", ok=True).stdout.strip() == "envuser"


def test_pip_config_keeps_a_backup_and_drops_extra_index(helpers_home, tk):
    pip_conf = helpers_home / ".config" / "pip" / "pip.conf"
    pip_conf.parent.mkdir(parents=True)
    old = "[global]\nextra-index-url = https://pypi.org/simple/\ntimeout = 60\n"
    pip_conf.write_text(old)
    args = ("pip-config", "--url", "https://devpi.example/", "--target", "user")
    dry = tk(*args, "--dry-run", ok=True).stdout
    assert "would replace" in dry and "dependency confusion" in dry
    assert pip_conf.read_text() == old
    r = tk(*args, ok=True)
    assert "old file kept as" in r.stdout
    text = pip_conf.read_text()
    assert "index-url = https://devpi.example/admin/prod/+simple/" in text
    assert "extra-index-url" not in text and "timeout = 60" in text
    assert [p.read_text() for p in pip_conf.parent.glob("pip.conf.bak-*")] == [old]
    uv = (helpers_home / ".config" / "uv" / "uv.toml").read_text()
    assert 'url = "https://devpi.example/admin/prod/+simple/"' in uv and "default = true" in uv
    again = json.loads(tk(*args, "-o", "json", ok=True).stdout)
    assert {f["action"] for f in again["files"]} == {"unchanged"}


def test_pip_config_in_a_virtualenv(helpers_home, tk, tmp_path, monkeypatch):
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")  # what makes a folder a virtualenv
    monkeypatch.setenv("VIRTUAL_ENV", str(venv))
    r = tk("pip-config", "--url", "https://devpi.example/", ok=True)
    assert (venv / "pip.conf").exists()
    assert "UV_DEFAULT_INDEX" in r.stdout
    assert not (helpers_home / ".config" / "uv" / "uv.toml").exists()
    monkeypatch.delenv("VIRTUAL_ENV")
    r = tk("pip-config", "--url", "https://devpi.example/", "--target", "venv", ok=False)
    assert "needs an active virtualenv" in r.output


def test_every_command_has_help(tk):
    for args in (["login"], ["logout"], ["whoami"], ["env"], ["use"], ["use-prod"], ["upload"],
                 ["pip-config"], ["fish"], ["fish", "install"], ["fish", "uninstall"],
                 ["fish", "status"], ["fish", "print"]):  # fmt: skip
        r = tk(*args, "--help", ok=True)
        assert "Usage:" in r.stdout


def test_pip_config_edits_uv_toml_in_place_keeping_the_users_settings(helpers_home, tk):
    uv_toml = helpers_home / ".config" / "uv" / "uv.toml"
    uv_toml.parent.mkdir(parents=True)
    old = (
        "# my uv settings\n"
        "native-tls = true  # corporate CA\n"
        'extra-index-url = ["https://pypi.org/simple"]\n'
        "\n[[index]]\n"
        'name = "pytorch"\n'
        'url = "https://download.pytorch.org/whl/cpu"\n'
        "\n[pip]\ncompile-bytecode = true\n"
    )
    uv_toml.write_text(old)
    args = ("pip-config", "--url", "https://devpi.example/", "--target", "user")
    dry = tk(*args, "--dry-run", ok=True).stdout
    assert "removed extra-index-url" in dry and "removed [[index]] pytorch" in dry
    tk(*args, ok=True)
    text = uv_toml.read_text()
    assert "# my uv settings" in text and "native-tls = true  # corporate CA" in text
    assert "[pip]\ncompile-bytecode = true" in text
    assert "pytorch" not in text and "extra-index-url" not in text
    assert 'url = "https://devpi.example/admin/prod/+simple/"' in text
    assert [p.read_text() for p in uv_toml.parent.glob("uv.toml.bak-*")] == [old]
