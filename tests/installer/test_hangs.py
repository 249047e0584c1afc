"""No hang: a server that accepts a connection and never answers ends every command with a message.

Thinkube's API server is reached over ZeroTier or Tailscale, where a dropped connection sends
nothing at all: only a client-side read timeout notices. The listener here is real (127.0.0.1),
accepts, reads, and stays silent.
"""

from __future__ import annotations

import os
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
from thinkube_devpi.installer.events import ObjectRef
from thinkube_devpi.installer.kube import Kube, KubeError, Timeouts


class SilentServer:
    """Accepts connections, reads what comes, never writes a byte."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.accepted = 0
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            self._conns.append(conn)

    def close(self) -> None:
        self._stop.set()
        for conn in self._conns:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def _kubeconfig(path: Path, url: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": url}}],
                "users": [{"name": "u", "user": {"token": "t0ken-not-a-secret"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    return path


def _tk(args: list[str], env: dict[str, str], timeout: float) -> tuple[int, str, float]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", "from thinkube_devpi.cli import main; main()", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["install", "status"], 1),
        (["install", "preflight"], 1),
        (["install", "plan"], 0),  # plan works without a cluster: it says why and goes on
    ],
)
def test_commands_end_with_a_message_on_a_server_that_never_answers(
    silent: SilentServer, tmp_path: Path, args: list[str], code: int
) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(thinkube_devpi.__file__).parents[1]),  # this tree's package
        "KUBECONFIG": str(_kubeconfig(tmp_path / "kubeconfig", silent.url)),
        "THINKUBE_DEVPI_READ_TIMEOUT": "1",
        "THINKUBE_DEVPI_DOMAIN": "example.com",
    }
    rc, out, took = _tk(args, env, timeout=60)
    out = " ".join(out.split())  # rich wraps long lines
    assert silent.accepted >= 1  # it did connect: this is the silent case, not a refused one
    assert rc == code, out
    assert "did not answer within 1s" in out, out
    assert took < 20, took


def test_a_stalled_request_is_tried_once_more_then_reported(
    silent: SilentServer, tmp_path: Path
) -> None:
    """A silent link costs a whole read timeout per attempt: one more try, not four."""
    from kubernetes import client

    cfg = client.Configuration()
    cfg.host = silent.url
    started = time.monotonic()
    with pytest.raises(KubeError) as info:
        Kube(
            client.ApiClient(cfg),
            cache_dir=tmp_path / "cache",
            timeouts=Timeouts(read=0.5, retries=4, backoff=0.01),
        )
    took = time.monotonic() - started
    assert "did not answer within 0.5s" in str(info.value)
    assert "after 2 attempts" in str(info.value)
    assert silent.accepted == 2  # the second attempt on a fresh connection
    assert took < 5


def test_a_watch_on_a_dropped_connection_keeps_the_waits_deadline(
    fake_kube, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """The list answers, then every watch stream stalls: the wait still ends at its deadline."""
    kube = Kube(
        fake_kube.api_client(),
        cache_dir=tmp_path / "cache",
        timeouts=Timeouts(read=0.5, backoff=0.01),
    )
    fake_kube.delay("GET", r"/configmaps$", 3600, watch=True)
    ref = ObjectRef("v1", "ConfigMap", "never", "default")
    started = time.monotonic()
    with pytest.raises(KubeError) as info:
        kube.wait_until(ref, lambda o: o is not None, what="ConfigMap never to appear", timeout=2)
    took = time.monotonic() - started
    assert "Timed out after 2s waiting for ConfigMap never to appear" in str(info.value)
    assert "ConfigMap default/never" in str(info.value)
    assert took < 2 + 0.5 + 1.5, took
    watches = [r for r in fake_kube.requests if r.watch and r.path.endswith("/configmaps")]
    assert len(watches) >= 2  # each stalled stream was given up and the wait listed again
