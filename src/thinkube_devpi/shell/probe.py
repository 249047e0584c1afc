"""A quick look at the devpi server for `whoami` and `env`: reachable, version, login valid.

Plain `http.client` on purpose: importing httpx costs ~150 ms, more than the whole of `whoami`
should take. Everything that sends data (login, upload) goes through `api.py` on httpx.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass, field
from urllib.parse import urlsplit

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


def _get(
    url: str, path: str, headers: dict[str, str], timeout: float
) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=timeout)
    else:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    try:
        conn.request("GET", parts.path.rstrip("/") + path, headers=headers)
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
