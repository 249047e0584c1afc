"""An API server that accepts connections and never answers (a dropped VPN route, a stalled HA
member): the TUI says so within 10 s, plan mode takes over, and q still quits at once."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import thinkube_devpi
import thinkube_devpi.tui.app as tui_app
from fakes.kube_api import FakeKubeAPI

from .conftest import SIZE, header_of, phases_of, until

SRC = str(Path(thinkube_devpi.__file__).resolve().parents[1])


class BlackHole:
    """A real listener on 127.0.0.1 that accepts every connection and never sends a byte."""

    def __init__(self, kubeconfig: Path, held: list[socket.socket]) -> None:
        self.kubeconfig = kubeconfig
        self.held = held
        self.closing = threading.Event()

    def hang_up(self) -> None:
        """Close what it holds, and from now on every new connection at once: a test's worker
        threads blocked on it end (the test's event loop waits for them when it closes)."""
        self.closing.set()
        for conn in list(self.held):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()


@pytest.fixture
def black_hole(tmp_path: Path) -> Iterator[BlackHole]:
    """A listener that accepts every connection and never answers, and a kubeconfig for it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    port = server.getsockname()[1]
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if hole.closing.is_set():
                conn.close()
            else:
                held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "bh", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "bh", "user": {"token": "t"}}],
                "contexts": [{"name": "bh", "context": {"cluster": "bh", "user": "bh"}}],
                "current-context": "bh",
            }
        )
    )
    hole = BlackHole(path, held)
    thread.start()
    yield hole
    stop.set()
    server.close()
    hole.hang_up()


async def test_a_silent_server_is_reported_within_10_s_and_plan_mode_takes_over(
    black_hole, make_app
):
    app = make_app(kubeconfig=black_hole.kubeconfig)
    async with app.run_test(size=SIZE) as pilot:
        start = time.monotonic()
        await until(pilot, lambda: header_of(app).connection == "not answering", timeout=12,
                    what="report")
        assert time.monotonic() - start < 10
        reason = header_of(app).reason
        assert "since " in reason and "127.0.0.1" in reason and "no answer" in reason
        assert "plan mode: nothing is written" in reason
        # where it points, from the kubeconfig, though the server never said a word
        assert (header_of(app).context, header_of(app).cluster) == ("bh", "bh")
        # plan mode took over: every phase has its plan, and nothing can be written
        await until(
            pilot,
            lambda: all(phases_of(app).plans.get(p.name) for p in app.state.phase_list),
            what="plans",
        )
        assert ("a", "Run all") not in header_of(app).hints
        # ctrl+r tries again, and says so again
        await pilot.press("ctrl+r")
        assert header_of(app).connection == "connecting"
        await until(pilot, lambda: header_of(app).connection == "not answering", timeout=12,
                    what="again")
        black_hole.hang_up()  # the blocked connect workers end; the test's loop can close


async def test_a_server_that_stalls_mid_session_turns_the_header_stale(
    cluster: FakeKubeAPI, kubeconfig, make_app, monkeypatch
):
    monkeypatch.setattr(tui_app, "PROBE_EVERY", 0.5)
    monkeypatch.setattr(tui_app, "PROBE_DEADLINE", 1.0)
    app = make_app(kubeconfig=kubeconfig)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: header_of(app).connection == "connected", what="connection")
        cluster.delay("GET", r"^/api/v1/namespaces/devpi$", 4)  # stops answering for 4 s
        await until(pilot, lambda: header_of(app).connection == "stale", timeout=8, what="stale")
        assert header_of(app).since.startswith("since ")
        assert "stopped answering" in header_of(app).reason and "/api/v1/namespaces/devpi" in header_of(app).reason
        await until(pilot, lambda: header_of(app).connection == "connected", timeout=10,
                    what="back")


def test_q_quits_within_2_s_while_a_worker_waits_on_a_silent_server(black_hole, tmp_path):
    """The real program in a terminal: q during the connection attempt, ctrl+c afterwards."""
    primary, secondary = pty.openpty()
    env = {**os.environ, "PYTHONPATH": SRC, "TERM": "xterm-256color", "COLUMNS": "120",
           "LINES": "34"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "thinkube_devpi.tui", "--kubeconfig", str(black_hole.kubeconfig),
         "--config", str(tmp_path / "config.toml")],
        stdin=secondary, stdout=secondary, stderr=secondary, env=env, close_fds=True,
        start_new_session=True,
    )
    os.close(secondary)
    out = b""

    def read(seconds: float) -> None:
        nonlocal out
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 0.1)
            if ready:
                try:
                    out += os.read(primary, 65536)
                except OSError:
                    return

    try:
        read(4)  # the app is up and its connect worker is blocked on the black hole
        assert proc.poll() is None
        os.write(primary, b"q")
        start = time.monotonic()
        while proc.poll() is None and time.monotonic() - start < 5:
            read(0.1)
        assert proc.poll() is not None, "still running 5 s after q"
        assert time.monotonic() - start < 2.5
        assert b"Traceback" not in out
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(primary)
