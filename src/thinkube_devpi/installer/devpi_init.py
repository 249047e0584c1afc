"""devpi initialisation: the prod user and index, created as root, converging.

This file is also copied into the DevPi image (``/opt/thinkube-devpi/devpi_init.py``) and run there
by the ``devpi-init`` Job, so it uses the standard library only. Secrets come from the
environment (secretKeyRefs in the Job), never from argv, and never appear in what it prints.

Why root: devpi-server runs with ``--restrict-modify root``, which stops anonymous user creation and
also stops ``admin`` from creating its own indexes. So root creates user and index, and a second
run changes nothing: an existing index keeps its packages (it is never deleted or recreated),
only the settings that differ are patched.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any

from thinkube_devpi.errors import Error

HEADERS = {"Accept": "application/json", "Content-Type": "application/json"}


class InitError(Error):
    """devpi answered something unexpected; the message never holds a password."""


class Client:
    def __init__(self, url: str, timeout: float = 30.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise InitError(f"DEVPI_URL must be an http(s) URL, not {url!r}")
        self.url = url.rstrip("/") + "/"
        self.timeout = timeout
        self.auth: str | None = None

    def request(
        self, method: str, path: str, body: Any = None, *, auth: bool = True
    ) -> tuple[int, dict[str, Any]]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(  # noqa: S310 (http(s) checked in __init__)
            self.url + path.lstrip("/"), data=data, method=method
        )
        for key, value in HEADERS.items():
            req.add_header(key, value)
        if auth and self.auth:
            req.add_header("X-Devpi-Auth", self.auth)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                return resp.status, _json(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _json(exc.read())
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise InitError(f"cannot reach devpi at {self.url}: {reason}") from None

    def login(self, user: str, password: str) -> bool:
        status, data = self.request(
            "POST", "+login", {"user": user, "password": password}, auth=False
        )
        if status != 200:
            return False
        token = (data.get("result") or {}).get("password", "")
        self.auth = base64.b64encode(f"{user}:{token}".encode()).decode()
        return True


def _json(raw: bytes) -> dict[str, Any]:
    try:
        out = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return out if isinstance(out, dict) else {}


def _message(data: dict[str, Any]) -> str:
    return str(data.get("message") or "no message")


def initialise(
    url: str,
    *,
    root_password: str,
    user: str,
    user_password: str,
    index: str,
    bases: tuple[str, ...] = ("root/pypi",),
) -> list[str]:
    """Make ``user`` and ``user/index`` as root; returns what changed (empty: nothing)."""
    if not root_password or not user_password:
        raise InitError("the root password and the user's password must both be set")
    changes: list[str] = []
    root = Client(url)
    if not root.login("root", root_password):
        raise InitError(
            "root could not log in: is devpi-root's password the one devpi was initialised with?"
        )

    status, data = root.request("GET", user)
    if status == 404:
        status, data = root.request("PUT", user, {"password": user_password})
        if status != 201:
            raise InitError(f"creating user {user!r} failed: HTTP {status} ({_message(data)})")
        changes.append(f"created user {user}")
    elif status == 200:
        if not Client(url).login(user, user_password):
            status, data = root.request("PATCH", user, {"password": user_password})
            if status != 200:
                raise InitError(
                    f"setting {user!r}'s password failed: HTTP {status} ({_message(data)})"
                )
            changes.append(f"set {user}'s password")
    else:
        raise InitError(f"reading user {user!r} failed: HTTP {status} ({_message(data)})")

    name = f"{user}/{index}"
    status, data = root.request("GET", name)
    if status == 404:
        status, data = root.request(
            "PUT",
            name,
            {"type": "stage", "bases": list(bases), "volatile": False, "acl_upload": [user]},
        )
        if status != 200:
            raise InitError(f"creating index {name} failed: HTTP {status} ({_message(data)})")
        changes.append(f"created index {name}")
        return changes
    if status != 200:
        raise InitError(f"reading index {name} failed: HTTP {status} ({_message(data)})")
    config = data.get("result") or {}
    ops = []
    if list(config.get("bases") or []) != list(bases):
        ops.append("bases=" + ",".join(bases))
    if config.get("volatile") is not False:
        ops.append("volatile=False")
    if user not in (config.get("acl_upload") or []):
        ops.append(f"acl_upload+={user}")
    if ops:
        status, data = root.request("PATCH", name, ops)
        if status != 200:
            raise InitError(f"updating index {name} failed: HTTP {status} ({_message(data)})")
        changes.append(f"updated index {name}: " + "; ".join(ops))
    return changes


def main(environ: dict[str, str] | None = None) -> int:
    env = dict(os.environ if environ is None else environ)
    try:
        changes = initialise(
            env.get("DEVPI_URL", "http://devpi:3141"),
            root_password=env.get("DEVPI_ROOT_PASSWORD", ""),
            user=env.get("DEVPI_USER", "admin"),
            user_password=env.get("DEVPI_USER_PASSWORD", ""),
            index=env.get("DEVPI_INDEX", "prod"),
        )
    except InitError as exc:
        print(f"devpi-init: {exc}", file=sys.stderr)
        return 1
    for change in changes or ["nothing to change"]:
        print(f"devpi-init: {change}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
