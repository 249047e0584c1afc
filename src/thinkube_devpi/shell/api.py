"""devpi-server's HTTP API on httpx: log in, look at an index, upload a file.

Every failure becomes a `DevpiError` that says what failed and what to do next; none carries a
secret (request bodies are never put into messages).
"""

from __future__ import annotations

import ipaddress
import math
import os
import time
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import httpx

from thinkube_devpi.errors import Error
from thinkube_devpi.secrets import Secret, redact
from thinkube_devpi.shell.session import Session

USER_AGENT = "tk-devpi"
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0  # a login or a lookup; an upload gets UPLOAD_READ_TIMEOUT
UPLOAD_READ_TIMEOUT = 300.0  # devpi-server answers an upload once it has stored the file


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 < value <= 3600:
        raise DevpiError(
            f"{name}={raw!r} is not a number of seconds", "use a positive number up to 3600"
        )
    return value


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class DevpiError(Error):
    """A devpi request failed. `str()` says what failed; `hint` what to do about it."""

    def __init__(self, message: str, hint: str = "", status: int | None = None) -> None:
        super().__init__(message, hint)
        self.status = status

    def __str__(self) -> str:
        return f"{self.message}\n  {self.hint}" if self.hint else self.message


def _server_message(resp: httpx.Response, known: Iterable[Any] = ()) -> str:
    """devpi's short message (redacted of ``known`` secrets: a server may echo the request)."""
    try:
        data = resp.json()
    except ValueError:
        text = resp.reason_phrase
    else:
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            text = str(data["message"])
        else:
            text = resp.reason_phrase
    return redact(text, known)[:300]


class DevpiAPI:
    """A client for one devpi-server root URL."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float | None = None,
        transport: Any = None,
        verify: Any = True,
        insecure_http: bool = False,
    ) -> None:
        """``timeout``: the read timeout of a login or a lookup (default 30 s, or
        ``THINKUBE_DEVPI_READ_TIMEOUT``); uploads get ``THINKUBE_DEVPI_UPLOAD_TIMEOUT`` (300 s).

        A password or token goes over plain http only to a loopback address, or with
        ``insecure_http`` (``--insecure-http``).
        """
        self.url = url
        self.insecure_http = insecure_http
        self.read_timeout = (
            timeout if timeout is not None else _seconds("THINKUBE_DEVPI_READ_TIMEOUT", READ_TIMEOUT)
        )
        self.connect_timeout = _seconds("THINKUBE_DEVPI_CONNECT_TIMEOUT", CONNECT_TIMEOUT)
        self.upload_timeout = _seconds("THINKUBE_DEVPI_UPLOAD_TIMEOUT", UPLOAD_READ_TIMEOUT)
        self._known: list[Any] = []  # secrets sent by this client: never shown in a message
        self._http = httpx.Client(
            base_url=url,
            verify=verify,
            timeout=httpx.Timeout(self.read_timeout, connect=self.connect_timeout),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            transport=transport,
        )

    def _check_transport(self, what: str) -> None:
        parts = urlsplit(self.url)
        if parts.scheme == "http" and not self.insecure_http and not is_loopback(parts.hostname):
            raise DevpiError(
                f"{what}: refusing to send a password or token over plain http to "
                f"{parts.hostname}",
                "use the https:// URL of the devpi API host, or pass --insecure-http if this "
                "network is trusted",
            )

    def _remember(self, session: Session | None) -> None:
        if session is not None:
            self._known += [session.token, f"{session.user}:{session.token}"]

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> DevpiAPI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        timeout = kwargs.get("timeout")
        read = timeout.read if isinstance(timeout, httpx.Timeout) else self.read_timeout
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.ConnectTimeout:
            raise DevpiError(
                f"{what}: no connection to {self.url} within {self.connect_timeout:g}s",
                "check the network and that the devpi server is up, then try again "
                "(THINKUBE_DEVPI_CONNECT_TIMEOUT sets the limit)",
            ) from None
        except httpx.TimeoutException:
            raise DevpiError(
                f"{what}: {self.url} did not answer within {read:g}s",
                "check that the devpi server is up (tk-devpi whoami) and try again "
                "(THINKUBE_DEVPI_READ_TIMEOUT sets the limit)",
            ) from None
        except httpx.TransportError as exc:
            detail = redact(str(exc), self._known)[:200]
            raise DevpiError(
                f"{what}: cannot reach {self.url} ({type(exc).__name__}: {detail})",
                "check the URL (tk-devpi whoami) and that the devpi server is running",
            ) from None

    def login(self, user: str, password: Secret) -> Session:
        """POST /+login; returns the session with the token devpi-server gave and its expiry."""
        what = f"logging in as {user!r} at {self.url}"
        self._check_transport(what)
        self._known.append(password)
        resp = self._request(
            "POST", "+login", what, json={"user": user, "password": password.reveal()}
        )
        if resp.status_code == 401:
            raise DevpiError(
                f"{what}: the server refused user {user!r} with that password (401)",
                "check the user name; if the password changed, run tk-devpi logout, then "
                "tk-devpi login again",
                401,
            )
        if resp.status_code != 200:
            raise DevpiError(
                f"{what}: the server answered {resp.status_code} "
                f"({_server_message(resp, self._known)})",
                "is this URL a devpi-server? tk-devpi whoami shows what answers there",
                resp.status_code,
            )
        try:
            result = resp.json()["result"]
            token = str(result["password"])
            lifetime = float(result.get("expiration", 36000))
        except (ValueError, KeyError, TypeError):
            raise DevpiError(f"{what}: the answer does not look like devpi-server's") from None
        session = Session(self.url, user, token, time.time() + lifetime)
        self._remember(session)
        return session

    def auth_status(self, session: Session | None) -> str:
        """'ok' when the server accepts `session`'s token, otherwise devpi's word for it."""
        if session is not None:
            self._check_transport("checking the login")
            self._remember(session)
        headers = session.auth_header() if session else {}
        resp = self._request("GET", "+api", "checking the login", headers=headers)
        try:
            return str(resp.json()["result"]["authstatus"][0])
        except (ValueError, KeyError, TypeError, IndexError):
            return "unknown"

    def index_config(self, index: str) -> dict[str, Any] | None:
        """The index's settings, or None when it does not exist."""
        resp = self._request("GET", index, f"looking up index {index!r}")
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise DevpiError(
                f"looking up index {index!r} at {self.url}: the server answered "
                f"{resp.status_code} ({_server_message(resp, self._known)})"
            )
        result = resp.json().get("result", {})
        return result if isinstance(result, dict) else {}

    def user_indexes(self, user: str) -> list[str]:
        resp = self._request("GET", user, f"listing the indexes of {user!r}")
        if resp.status_code != 200:
            return []
        indexes = resp.json().get("result", {}).get("indexes", {})
        return sorted(f"{user}/{name}" for name in indexes)

    def upload_file(
        self,
        index: str,
        session: Session | None,
        fields: Iterable[tuple[str, str]],
        filename: str,
        stream: BinaryIO,
    ) -> httpx.Response:
        """POST one distribution to the index as multipart form data.

        httpx reads `stream` in 64 KiB chunks while sending: a large file is never held whole.
        Returns the response; the caller explains its status.
        """
        what = f"uploading {filename} to {self.url}{index}/"
        if session is not None:
            self._check_transport(what)
            self._remember(session)
        headers = session.auth_header() if session else {}
        return self._request(
            "POST",
            index + "/",
            what,
            data=_multi(fields),
            files={"content": (filename, stream, "application/octet-stream")},
            headers=headers,
            timeout=httpx.Timeout(self.upload_timeout, connect=self.connect_timeout),
        )

    def server_message(self, resp: httpx.Response) -> str:
        """The server's short message, redacted of every secret this client sent."""
        return _server_message(resp, self._known)


def _multi(fields: Iterable[tuple[str, str]]) -> dict[str, str | list[str]]:
    """httpx wants repeated fields as lists."""
    out: dict[str, str | list[str]] = {}
    for key, value in fields:
        if key in out:
            existing = out[key]
            out[key] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            out[key] = value
    return out


ProgressCallback = Callable[[int], None]
