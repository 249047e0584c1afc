"""A quick look at the devpi server for `whoami` and `env`: reachable, version, login valid.

Plain `http.client` on purpose: importing httpx costs ~150 ms, more than the whole of `whoami`
should take. Everything that sends data (login, upload) goes through `api.py` on httpx.
"""

from __future__ import annotations

import http.client
import json
import os
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

from thinkube_devpi.shell.session import Session


@dataclass
class ServerState:
    url: str
    reachable: bool = False
    error: str | None = None
    server_version: str | None = None
    login: str = "none"  # none | valid | invalid | expired
    login_user: str | None = None
    index_exists: bool | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _proxy_for(scheme: str, host: str) -> SplitResult | None:
    """The proxy from ``HTTPS_PROXY``/``HTTP_PROXY`` unless ``NO_PROXY`` exempts ``host``
    (what httpx, pip and curl do; http.client alone does not look)."""
    proxy = os.environ.get(f"{scheme}_proxy") or os.environ.get(f"{scheme.upper()}_PROXY")
    if not proxy:
        return None
    for entry in (os.environ.get("no_proxy") or os.environ.get("NO_PROXY") or "").split(","):
        entry = entry.strip().lstrip(".")
        if entry and (entry == "*" or host == entry or host.endswith("." + entry)):
            return None
    return urlsplit(proxy if "://" in proxy else f"http://{proxy}")


def _get(
    url: str, path: str, headers: dict[str, str], timeout: float
) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    proxy = _proxy_for(parts.scheme, host)
    target = parts.path.rstrip("/") + path
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        if proxy is not None:
            conn = http.client.HTTPSConnection(proxy.hostname or "", proxy.port, timeout=timeout)
            conn.set_tunnel(host, parts.port or 443)
        else:
            conn = http.client.HTTPSConnection(host, parts.port, timeout=timeout)
    elif proxy is not None:
        conn = http.client.HTTPConnection(proxy.hostname or "", proxy.port, timeout=timeout)
        target = f"{parts.scheme}://{parts.netloc}{target}"
    else:
        conn = http.client.HTTPConnection(host, parts.port, timeout=timeout)
    try:
        conn.request("GET", target, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def probe(
    url: str, session: Session | None, index: str | None = None, timeout: float = 5.0
) -> ServerState:
    """Ask `url`'s /+api whether the server answers and whether `session`'s token is accepted."""
    state = ServerState(url=url)
    headers = {"Accept": "application/json", "User-Agent": "tk-devpi"}
    if session is not None:
        headers.update(session.auth_header())
    try:
        status, resp_headers, body = _get(url, "/+api", headers, timeout)
    except (OSError, http.client.HTTPException) as exc:
        state.error = f"{type(exc).__name__}: {exc}"
        return state
    state.reachable = status == 200
    state.server_version = resp_headers.get("x-devpi-server-version")
    if status != 200:
        state.error = f"GET {url}+api answered {status}"
        return state
    try:
        authstatus = json.loads(body)["result"]["authstatus"]
    except (ValueError, KeyError, TypeError):
        state.error = f"{url}+api did not answer like devpi-server"
        state.reachable = False
        return state
    if session is None:
        state.login = "none"
    elif authstatus and authstatus[0] == "ok":
        state.login = "valid"
        state.login_user = authstatus[1]
    else:
        state.login = "expired" if session.expired else "invalid"
    if index:
        try:
            code, _, _ = _get(url, "/" + index, {"Accept": "application/json"}, timeout)
            state.index_exists = code == 200
        except (OSError, http.client.HTTPException):
            state.index_exists = None
    return state
