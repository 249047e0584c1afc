"""A developer's day against a real devpi-server: log in, check, select prod, upload, install."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx

from shell.conftest import as_json
from shell.dists import make_sdist, make_wheel
from thinkube_devpi import secrets
from thinkube_devpi.shell import session as sessions
from thinkube_devpi.shell import settings


def test_login_whoami_use_prod_upload_install_logout(devpi_server, tk, helpers_home, tmp_path):
    dev = devpi_server.new_user()
    # what installer phase 85 writes
    settings.write_helper_config(dev.url, dev.name, dev.index)

    r = tk("login", "--password-stdin", input=dev.password + "\n", ok=True)
    assert f"logged in as {dev.name}" in r.stdout
    assert "PlaintextKeyring" in r.stdout
    assert (
        secrets.lookup(sessions.password_key(dev.url, dev.name), interactive=False) == dev.password
    )
    assert "devpi-client logged in too" in r.stdout

    state = as_json(tk("whoami", "-o", "json", ok=True))
    assert state["login"] == "valid"
    assert state["server_reachable"] is True
    assert state["index"] == dev.index and state["index_exists"] is True
    assert state["versions"]["devpi-server"]
    text = tk("whoami", ok=True).stdout
    assert "login:   valid" in text and dev.index in text

    r = tk("use-prod", ok=True)
    assert f"selected {dev.index}" in r.stdout
    assert tk("use-prod", "--print-simple-url", ok=True).stdout.strip() == dev.simple_url
    # devpi-client follows: its current.json names the index
    current = json.loads((helpers_home / ".devpi" / "client" / "current.json").read_text())
    assert current["index"].rstrip("/") == dev.index_url

    wheel = make_wheel(tmp_path, "tkdemo", "1.0.0", requires_python=">=3.10")
    sdist = make_sdist(tmp_path, "tkdemo", "1.0.0", requires_python=">=3.10")
    r = tk("upload", str(wheel), str(sdist), ok=True)
    assert r.stdout.count("uploaded ") == 2

    simple = httpx.get(f"{dev.simple_url}tkdemo/").text
    assert wheel.name in simple and sdist.name in simple
    assert 'data-requires-python="&gt;=3.10"' in simple
    meta = httpx.get(f"{dev.index_url}/tkdemo/1.0.0", headers={"Accept": "application/json"}).json()
    assert meta["result"]["requires_python"] == ">=3.10"
    assert "Programming Language :: Python :: 3" in meta["result"]["classifiers"]

    r = tk("pip-config", "--target", "user", ok=True)
    pip_conf = helpers_home / ".config" / "pip" / "pip.conf"
    assert pip_conf.read_text().count("index-url") == 1
    assert "extra-index" not in pip_conf.read_text()
    target = tmp_path / "site"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-cache-dir",
         "--disable-pip-version-check", "--only-binary", ":all:",
         "--target", str(target), "tkdemo"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (target / "tkdemo" / "__init__.py").read_text() == 'VALUE = "1.0.0"\n'

    r = tk("logout", ok=True)
    assert "keyring password removed" in r.stdout
    assert secrets.lookup(sessions.password_key(dev.url, dev.name), interactive=False) is None
    assert as_json(tk("whoami", "-o", "json", ok=True))["login"] == "none"
