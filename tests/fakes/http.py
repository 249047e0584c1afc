"""The one way the fakes serve: a threaded server on 127.0.0.1 in a daemon thread, and free ports.

Every fake HTTP (or raw TCP) server in tests/fakes starts through :func:`serve` and stops through
:func:`stop`, so they all bind 127.0.0.1 only, answer requests in parallel, poll for shutdown
quickly and never keep a test process alive.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from http.server import ThreadingHTTPServer
from typing import Any, TypeVar

S = TypeVar("S", bound=socketserver.BaseServer)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (a refused connection, or a port to use)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(
    handler: type[socketserver.BaseRequestHandler],
    *,
    port: int = 0,
    server_class: type[Any] = ThreadingHTTPServer,
    name: str | None = None,
    **attributes: Any,
) -> Any:
    """Start ``server_class(("127.0.0.1", port), handler)`` in a daemon thread; returns the server.

    ``attributes`` are set on the server before it serves (a handler reads them as
    ``self.server.<name>``).
    """
    server = server_class(("127.0.0.1", port), handler)
    server.daemon_threads = True
    for key, value in attributes.items():
        setattr(server, key, value)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name=name
    )
    server.thread = thread
    thread.start()
    return server


def stop(server: socketserver.BaseServer, *, timeout: float = 5.0) -> None:
    """Stop serving, close the socket and wait for the serving thread."""
    server.shutdown()
    server.server_close()
    thread = getattr(server, "thread", None)
    if thread is not None:
        thread.join(timeout=timeout)
