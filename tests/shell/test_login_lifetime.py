"""A login outlives a server restart (secret file); a voided or expired one is renewed."""

from __future__ import annotations

import dataclasses

from shell.conftest import as_json
from shell.dists import make_wheel
from thinkube_devpi.shell import session as sessions
from thinkube_devpi.shell import settings


def test_login_survives_a_restart_with_the_secret_file(fresh_devpi_server, tk):
    dev = fresh_devpi_server.new_user()
    settings.write_helper_config(dev.url, dev.name, dev.index)
    tk("login", "--password-stdin", "--no-devpi-client", input=dev.password, ok=True)
    token = sessions.load(dev.url, dev.name).token
    fresh_devpi_server.restart(secretfile=True)
    assert as_json(tk("whoami", "-o", "json", ok=True))["login"] == "valid"
    assert sessions.load(dev.url, dev.name).token == token


def test_a_voided_login_is_renewed_from_the_keyring(fresh_devpi_server, tk, tmp_path):
    dev = fresh_devpi_server.new_user()
    settings.write_helper_config(dev.url, dev.name, dev.index)
    tk("login", "--password-stdin", "--no-devpi-client", input=dev.password, ok=True)
    old = sessions.load(dev.url, dev.name)
    # without a secret file devpi-server makes a new secret: every token is void
    fresh_devpi_server.restart(secretfile=False)
    assert as_json(tk("whoami", "-o", "json", ok=True))["login"] == "invalid"
    r = tk("upload", str(make_wheel(tmp_path, "renewed", "1.0")), ok=True)
    assert "uploaded" in r.stdout
    assert sessions.load(dev.url, dev.name).token != old.token
    assert as_json(tk("whoami", "-o", "json", ok=True))["login"] == "valid"


def test_an_expired_login_is_renewed_and_without_keyring_says_log_in(devpi_server, tk, tmp_path):
    dev = devpi_server.new_user()
    settings.write_helper_config(dev.url, dev.name, dev.index)
    tk("login", "--password-stdin", "--no-devpi-client", input=dev.password, ok=True)
    current = sessions.load(dev.url, dev.name)
    sessions.save(dataclasses.replace(current, expires=0))
    tk("upload", str(make_wheel(tmp_path, "expiry", "1.0")), ok=True)
    assert not sessions.load(dev.url, dev.name).expired

    tk("logout", "--keep-password", ok=True)
    from thinkube_devpi import secrets

    secrets.forget(sessions.password_key(dev.url, dev.name))
    r = tk("upload", str(make_wheel(tmp_path, "expiry", "1.1")), ok=False)
    assert "does not exist" in r.output and "run tk-devpi login" in r.output
