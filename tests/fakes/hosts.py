"""The platform's host names, played on 127.0.0.1.

A CONNECT proxy (the standard ``HTTPS_PROXY`` route, which httpx, pip and the helpers honour) sends
``https://<host>`` to a local TLS front with a certificate for that host from the test CA, which
passes the bytes to a plain HTTP stand-in: a real devpi-server for the API host, an oauth2-proxy
stand-in for the dashboard, a discovery document for Keycloak. Nothing in the product changes: only
where names lead.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import socketserver
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

from fakes import http
from fakes.tls import shared_pki


def _pipe(a: socket.socket, b: socket.socket) -> None:
    socks = [a, b]
    try:
        while True:
            ready, _, _ = select.select(socks, [], [], 30)
            if not ready:
                return
            for s in ready:
                data = s.recv(65536)
                if not data:
                    return
                (b if s is a else a).sendall(data)
    except OSError:
        return
    finally:
        for s in socks:
            with contextlib.suppress(OSError):
                s.close()


class _Threaded(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class ConnectProxy:
    """``CONNECT host:443`` to the local port mapped for ``host``; unknown hosts get 502."""

    def __init__(self) -> None:
        self.routes: dict[str, int] = {}
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                conn: socket.socket = self.request
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    head += chunk
                line = head.split(b"\r\n", 1)[0].decode()
                method, target, _ = line.split(" ", 2)
                host, _, port = target.rpartition(":")
                local = proxy.routes.get(host) if method == "CONNECT" and port == "443" else None
                if local is None:
                    conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                    return
                upstream = socket.create_connection(("127.0.0.1", local))
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                _pipe(conn, upstream)

        self.server = http.serve(Handler, server_class=_Threaded)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        http.stop(self.server)


class TLSFront:
    """Terminates TLS for ``names`` with the test CA and passes the bytes to ``backend_port``."""

    def __init__(self, names: list[str], backend_port: int) -> None:
        cert, key = shared_pki().issue(names)
        folder = shared_pki().dir
        stem = names[0].replace("*", "wildcard")
        (folder / f"{stem}.pem").write_bytes(cert)
        (folder / f"{stem}.key").write_bytes(key)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(folder / f"{stem}.pem", folder / f"{stem}.key")
        self.backend_port = backend_port

        front = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                try:
                    tls = ctx.wrap_socket(self.request, server_side=True)
                except (ssl.SSLError, OSError):
                    return
                upstream = socket.create_connection(("127.0.0.1", front.backend_port))
                _pipe(tls, upstream)

        self.server = http.serve(Handler, server_class=_Threaded)
        self.port = self.server.server_address[1]

    def close(self) -> None:
        http.stop(self.server)


@dataclass
class Behaviour:
    """How the dashboard stand-in answers; the defaults are oauth2-proxy with --skip-provider-button."""

    root_status: int = 302  # 200: no gate; 403: oauth2-proxy's own sign-in page
    auth_status: int = 401
    issuer: str = ""
    calls: list[str] = field(default_factory=list)


def _http_server(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    return http.serve(handler)


def dashboard_stand_in(behaviour: Behaviour) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(
            self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            behaviour.calls.append(self.path)
            if self.path.startswith("/oauth2/auth"):
                self._send(behaviour.auth_status)
            elif behaviour.root_status == 302:
                query = urlencode(
                    {
                        "client_id": "devpi-dashboard",
                        "response_type": "code",
                        "redirect_uri": "https://devpi.example.com/oauth2/callback",
                    }
                )
                self._send(
                    302,
                    headers={
                        "Location": f"{behaviour.issuer}/protocol/openid-connect/auth?{query}"
                    },
                )
            else:
                self._send(
                    behaviour.root_status, b"<html>devpi</html>", {"Content-Type": "text/html"}
                )

    return _http_server(Handler)


def discovery_stand_in(issuer: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            body = json.dumps(
                {
                    "issuer": issuer,
                    "authorization_endpoint": f"{issuer}/protocol/openid-connect/auth",
                }
            ).encode()
            ok = self.path.endswith("/.well-known/openid-configuration")
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return _http_server(Handler)


@dataclass
class Hosts:
    proxy: ConnectProxy
    fronts: dict[str, TLSFront]
    resolved: dict[str, set[str]]
    servers: list[ThreadingHTTPServer]
    ca_file: str

    def resolve(self, host: str) -> set[str]:
        return set(self.resolved.get(host, set()))

    def route(self, host: str, backend_port: int) -> None:
        front = TLSFront([host], backend_port)
        self.fronts[host] = front
        self.proxy.routes[host] = front.port
        self.resolved[host] = {"127.0.0.1"}

    def unroute(self, host: str) -> None:
        self.proxy.routes.pop(host, None)
        self.resolved.pop(host, None)


@contextlib.contextmanager
def platform_hosts(routes: dict[str, int]) -> Iterator[Hosts]:
    """Routes ``https://<host>`` to local ports; use with HTTPS_PROXY=hosts.proxy.url."""
    hosts = Hosts(ConnectProxy(), {}, {}, [], shared_pki().ca_file)
    try:
        for host, port in routes.items():
            hosts.route(host, port)
        yield hosts
    finally:
        for front in hosts.fronts.values():
            front.close()
        for server in hosts.servers:
            server.shutdown()
        hosts.proxy.close()
