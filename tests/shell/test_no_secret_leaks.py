"""The password goes to the keyring and to devpi's /+login, and nowhere else.

Login (devpi-client included), whoami, use-prod, upload with a renewal from the keyring, pip-config
and logout run with a known password. Then it is searched for, plain, base64 (alone and as
"user:password") and JSON-escaped, in: the argv and environment of every process started
(`sys.addaudithook` sees subprocess.Popen, os.exec*, os.posix_spawn and os.system), all output,
every log record at DEBUG, and every file under the test HOME except the keyring's own file.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import subprocess
import sys

import pytest

from shell.dists import make_sdist, make_wheel
from thinkube_devpi.shell import session as sessions
from thinkube_devpi.shell import settings

_SPAWNS: list[tuple[str, tuple[object, ...]]] = []
_WATCHED = {"subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.system", "os.fork"}


def _audit(event: str, args: tuple[object, ...]) -> None:
    if event in _WATCHED:
        _SPAWNS.append((event, args))


sys.addaudithook(_audit)  # audit hooks cannot be removed: it only appends to a list


def forms(user: str, password: str) -> dict[str, str]:
    return {
        "plain": password,
        "base64": base64.b64encode(password.encode()).decode(),
        "base64 user:password": base64.b64encode(f"{user}:{password}".encode()).decode(),
        "json": json.dumps(password)[1:-1],
        "json ascii": json.dumps(password, ensure_ascii=True)[1:-1],
    }


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def debug_logs():
    handler = _Collect()
    root = logging.getLogger()
    old = root.level
    # other modules quiet these on import; open them up so the check sees every line they log
    quieted = {name: logging.getLogger(name).level for name in ("httpx", "httpcore", "urllib3")}
    for name in quieted:
        logging.getLogger(name).setLevel(logging.NOTSET)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler.lines
    root.removeHandler(handler)
    root.setLevel(old)
    for name, level in quieted.items():
        logging.getLogger(name).setLevel(level)


def test_the_password_is_nowhere_but_the_keyring(
    devpi_server, tk, helpers_home, plaintext_keyring, tmp_path, debug_logs
):
    dev = devpi_server.new_user()
    # a password with characters that JSON escapes, so the escaped form differs from the plain one
    import httpx

    password = 'Le"ak\\-Ch\u00e9ck-' + dev.password
    r = httpx.patch(
        f"{dev.url}{dev.name}",
        json={"password": password},
        headers=_auth(dev.url, dev.name, dev.password),
    )
    assert r.status_code == 200, r.text
    settings.write_helper_config(dev.url, dev.name, dev.index)
    _SPAWNS.clear()

    outputs = [
        tk("login", "--password-stdin", input=password + "\n", ok=True).output,
        tk("whoami", ok=True).output,
        tk("use-prod", ok=True).output,
    ]
    # force a renewal: the next upload reads the password back from the keyring and logs in
    current = sessions.load(dev.url, dev.name)
    sessions.save(dataclasses.replace(current, expires=0))
    wheel = make_wheel(tmp_path, "leakcheck", "1.0")
    sdist = make_sdist(tmp_path, "leakcheck", "1.0")
    outputs.append(tk("upload", str(wheel), str(sdist), ok=True).output)
    outputs.append(tk("env", "-o", "json", ok=True).output)
    outputs.append(tk("pip-config", "--target", "user", ok=True).output)
    # the product's one child process (the build) goes through the same hook: prove it is watched
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    assert any(event == "subprocess.Popen" for event, _ in _SPAWNS)

    keyring_file = plaintext_keyring
    assert keyring_file.exists(), "the keyring should hold the password"
    outputs.append(tk("logout", "--keep-password", ok=True).output)

    for label, needle in forms(dev.name, password).items():
        for event, args in _SPAWNS:
            assert needle not in repr(args), f"{label} form in {event} argv/env"
        for text in outputs:
            assert needle not in text, f"{label} form in command output"
        for line in debug_logs:
            assert needle not in line, f"{label} form in a DEBUG log line"
        for path in helpers_home.rglob("*"):
            if path.is_file() and path != keyring_file:
                data = path.read_bytes()
                assert needle.encode() not in data, f"{label} form in {path}"
    assert debug_logs, "DEBUG logging was captured"


def _auth(url: str, user: str, password: str) -> dict[str, str]:
    import httpx

    token = httpx.post(f"{url}+login", json={"user": user, "password": password}).json()
    raw = f"{user}:{token['result']['password']}".encode()
    return {"X-Devpi-Auth": base64.b64encode(raw).decode(), "Accept": "application/json"}
