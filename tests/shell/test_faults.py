"""The helpers under faults and bad input: no hang, no secret in a message, no write before the
input is checked, the user's files keep their mode.

The echoing server answers every request with an error that repeats the request (headers and
body) back, as some proxies and misconfigured servers do: whatever the helpers print of it must
hold no password or token, in any encoding.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import stat
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from shell.dists import make_wheel
from thinkube_devpi import paths
from thinkube_devpi.secrets import forms, redact
from thinkube_devpi.shell import session as sessions

PASSWORD = "Echo+Pass/word=42"  # '+', '/' and '=' make the URL-encoded and base64 forms differ
TOKEN = "tok-1234567890abcdef-secret"


class _Echo(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def _echo(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode(errors="replace") if length else ""
        if self.path.endswith("+api"):  # the stored login is accepted, so an upload is tried
            data = json.dumps({"result": {"authstatus": ["ok", "someone", []]}}).encode()
            self.send_response(200)
        else:
            echoed = f"{self.command} {self.path} {dict(self.headers)} {body}"
            data = json.dumps(
                {"message": f"cannot handle: {echoed} {quote(body)} {quote_plus(body)}"}
            ).encode()
            self.send_response(500, f"Echo {body[:80]}")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _echo


@pytest.fixture
def echo() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _leaks(text: str, secret: str) -> list[str]:
    return [f for f in forms(secret) if f in text]


def test_redact_hides_every_form() -> None:
    text = " ".join(sorted(forms(PASSWORD)))
    assert len(forms(PASSWORD)) >= 5
    assert _leaks(redact(text, [PASSWORD]), PASSWORD) == []
    assert quote_plus(PASSWORD) in text and base64.b64encode(PASSWORD.encode()).decode() in text


def test_a_server_echoing_the_login_shows_no_password(echo: str, tk) -> None:  # type: ignore[no-untyped-def]
    r = tk("login", "--url", echo, "--user", "alice", "--password-stdin", "--no-devpi-client",
           input=PASSWORD, ok=False)  # fmt: skip
    assert "answered 500" in r.output, r.output
    assert "cannot handle" in r.output  # the server's message is shown ...
    assert _leaks(r.output, PASSWORD) == [], r.output  # ... without the password in it


def test_a_server_echoing_an_upload_shows_no_token(echo: str, tk, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sessions.save(sessions.Session(echo, "alice", TOKEN, time.time() + 3600))
    wheel = make_wheel(tmp_path, "echoed", "1.0")
    r = tk("upload", "--url", echo, "--user", "alice", "--index", "alice/dev", str(wheel),
           ok=False)  # fmt: skip
    assert "500" in r.output, r.output
    auth = base64.b64encode(f"alice:{TOKEN}".encode()).decode()
    assert _leaks(r.output, TOKEN) == [] and auth not in r.output, r.output


def test_plain_http_to_another_host_is_refused_before_anything_is_sent(tk) -> None:  # type: ignore[no-untyped-def]
    r = tk("login", "--url", "http://devpi.internal.example:3141/", "--user", "alice",
           "--password-stdin", "--no-devpi-client", input=PASSWORD, ok=False)  # fmt: skip
    assert "refusing to send a password or token over plain http" in r.output
    assert "--insecure-http" in r.output
    assert PASSWORD not in r.output


def test_insecure_http_lets_it_through(echo: str, tk, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # the echo server is on loopback, so name it by a non-loopback name that resolves there
    monkeypatch.setattr(
        socket, "getaddrinfo", _pinned(socket.getaddrinfo, "devpi.internal.example", "127.0.0.1")
    )
    url = echo.replace("127.0.0.1", "devpi.internal.example")
    r = tk("login", "--url", url, "--user", "alice", "--password-stdin", "--no-devpi-client",
           "--insecure-http", input=PASSWORD, ok=False)  # fmt: skip
    assert "answered 500" in r.output, r.output  # it was sent (and the echo came back redacted)
    assert _leaks(r.output, PASSWORD) == []


def _pinned(real, name: str, address: str):  # type: ignore[no-untyped-def]
    def resolve(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        return real(address if host == name else host, *args, **kwargs)

    return resolve


def test_login_to_a_devpi_that_never_answers_ends_in_time(tk, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts (the kernel does), never answers
    monkeypatch.setenv("THINKUBE_DEVPI_READ_TIMEOUT", "1")
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
    started = time.monotonic()
    try:
        r = tk("login", "--url", url, "--user", "alice", "--password-stdin", "--no-devpi-client",
               input=PASSWORD, ok=False)  # fmt: skip
        r2 = tk("use-prod", "--url", url, ok=False)
    finally:
        listener.close()
    assert time.monotonic() - started < 10
    assert "did not answer within 1s" in r.output, r.output
    assert "did not answer within 1s" in r2.output, r2.output


def test_a_corrupt_sessions_file_is_reported_and_left_alone(tk) -> None:  # type: ignore[no-untyped-def]
    path = sessions.sessions_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    for text in ("{not json", '{"https://x/": ["a list"]}'):
        path.write_text(text)
        r = tk("login", "--url", "http://127.0.0.1:9/", "--user", "alice",
               "--password-stdin", "--no-devpi-client", input=PASSWORD, ok=False)  # fmt: skip
        assert "sessions.json cannot be used" in r.output and "Traceback" not in r.output
        assert path.read_text() == text


def test_pip_config_for_a_venv_that_does_not_exist_writes_nothing(tk, monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("VIRTUAL_ENV", str(tmp_path / "gone"))
    r = tk("pip-config", "--url", "https://devpi.example.com/", "--target", "venv", ok=False)
    assert "VIRTUAL_ENV=" in r.output and "not a virtualenv" in r.output, r.output
    assert not (tmp_path / "gone").exists()
    assert not (paths.xdg_config_home() / "pip").exists()


def test_pip_config_keeps_a_private_pip_conf_private(tk) -> None:  # type: ignore[no-untyped-def]
    conf = paths.xdg_config_home() / "pip" / "pip.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("[global]\nproxy = http://me:proxy-pass@proxy:3128\n")
    conf.chmod(0o600)
    tk("pip-config", "--url", "https://devpi.example.com/", "--no-uv", ok=True)
    assert "devpi.example.com" in conf.read_text()
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    (backup,) = conf.parent.glob("pip.conf.bak-*")
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600


def test_fish_install_into_an_empty_dir_is_refused(tk, monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)
    r = tk("fish", "install", "--dir", "", ok=False)
    assert "not a folder to install into" in r.output
    assert list(here.iterdir()) == []


def test_a_corrupt_fish_manifest_is_reported_and_left_alone(tk, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from thinkube_devpi.fish.generator import manifest_path

    path = manifest_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    target = tmp_path / "fish"
    for text in ("[1, 2", json.dumps({str(target): {"files": 3}})):
        path.write_text(text)
        r = tk("fish", "install", "--dir", str(target), ok=False)
        assert "fish-manifest.json cannot be used" in r.output, r.output
        assert "Traceback" not in r.output
        assert path.read_text() == text
        assert not target.exists()


def test_no_file_of_the_helpers_is_group_or_world_readable_after_a_login(tk, devpi_server) -> None:  # type: ignore[no-untyped-def]
    dev = devpi_server.new_user()
    tk("login", "--url", dev.url, "--user", dev.name, "--password-stdin", "--no-devpi-client",
       input=dev.password, ok=True)  # fmt: skip
    path = sessions.sessions_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.stat(path.parent).st_mode & 0o077 == 0


def test_fish_install_into_a_shared_folder_follows_no_planted_symlink(tk, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Another user plants symlinks where a temporary file used to go (``.<name>.tmp``): the
    install writes its temporary files with O_EXCL under random names, so the victim's file stays."""
    victim = tmp_path / "victim.txt"
    victim.write_text("someone else's file\n")
    shared = tmp_path / "shared-fish"
    for sub in ("functions", "completions"):
        (shared / sub).mkdir(parents=True)
    for name in ("devpi-login.fish", "devpi-upload.fish", "tk-devpi.fish"):
        for sub in ("functions", "completions"):
            (shared / sub / f".{name}.tmp").symlink_to(victim)
    tk("fish", "install", "--dir", str(shared), ok=True)
    assert victim.read_text() == "someone else's file\n"
    assert (shared / "functions" / "devpi-login.fish").read_text().startswith("#")
