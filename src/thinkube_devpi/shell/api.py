"""devpi-server's HTTP API on httpx: log in, look at an index, upload a file.

Every failure becomes a `DevpiError` that says what failed and what to do next; none carries a
secret (request bodies are never put into messages).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO

import httpx

from thinkube_devpi.errors import Error
from thinkube_devpi.secrets import Secret
from thinkube_devpi.shell.session import Session

USER_AGENT = "tk-devpi"


class DevpiError(Error):
    """A devpi request failed. `str()` says what failed; `hint` what to do about it."""

    def __init__(self, message: str, hint: str = "", status: int | None = None) -> None:
        super().__init__(message, hint)
        self.status = status

    def __str__(self) -> str:
        return f"{self.message}\n  {self.hint}" if self.hint else self.message


def _server_message(resp: httpx.Response) -> str:
    try:
        data = resp.json()
    except ValueError:
        return resp.reason_phrase
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])
    return resp.reason_phrase


class DevpiAPI:
    """A client for one devpi-server root URL."""

    def __init__(
        self, url: str, *, timeout: float = 30.0, transport: Any = None, verify: Any = True
    ) -> None:
        self.url = url
        self._http = httpx.Client(
            base_url=url,
            verify=verify,
            timeout=httpx.Timeout(timeout, read=max(timeout, 300.0)),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> DevpiAPI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise DevpiError(
                f"{what}: {self.url} did not answer in time",
                "check that the devpi server is up (tk-devpi whoami) and try again",
            ) from None
        except httpx.TransportError as exc:
            raise DevpiError(
                f"{what}: cannot reach {self.url} ({type(exc).__name__}: {exc})",
                "check the URL (tk-devpi whoami) and that the devpi server is running",
            ) from None

    def login(self, user: str, password: Secret) -> Session:
        """POST /+login; returns the session with the token devpi-server gave and its expiry."""
        what = f"logging in as {user!r} at {self.url}"
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
                f"{what}: the server answered {resp.status_code} ({_server_message(resp)})",
                "is this URL a devpi-server? tk-devpi whoami shows what answers there",
                resp.status_code,
            )
        try:
            result = resp.json()["result"]
            token = str(result["password"])
            lifetime = float(result.get("expiration", 36000))
        except (ValueError, KeyError, TypeError):
            raise DevpiError(f"{what}: the answer does not look like devpi-server's") from None
        return Session(self.url, user, token, time.time() + lifetime)

    def auth_status(self, session: Session | None) -> str:
        """'ok' when the server accepts `session`'s token, otherwise devpi's word for it."""
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
                f"{resp.status_code} ({_server_message(resp)})"
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
        headers = session.auth_header() if session else {}
        what = f"uploading {filename} to {self.url}{index}/"
        return self._request(
            "POST",
            index + "/",
            what,
            data=_multi(fields),
            files={"content": (filename, stream, "application/octet-stream")},
            headers=headers,
        )


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
