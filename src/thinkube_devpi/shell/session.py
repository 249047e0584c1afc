"""The helpers' login state.

The password lives only in the system keyring, under `password_key(url, user)`. The login token
devpi-server hands out (valid for hours, voided when the server loses its secret) is kept with its
expiry in ``sessions.json`` in the user state dir, a 0600 file, as devpi-client keeps its own in
``auth.json``: reading it does not cost a keyring import, which keeps `whoami` fast. A token that
has expired or that the server no longer accepts is renewed from the keyring password.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from pathlib import Path

from thinkube_devpi import paths

STATE_ENV = paths.STATE_ENV
# renew a little before devpi-server would refuse the token
_EXPIRY_MARGIN_S = 60


def password_key(url: str, user: str) -> str:
    """The keyring entry name (service "thinkube-devpi") of `user`'s password at `url`."""
    return f"devpi:{user}@{url}"


def state_dir() -> Path:
    return paths.state_dir()


def sessions_path() -> Path:
    return state_dir() / "sessions.json"


@dataclass(frozen=True)
class Session:
    url: str
    user: str
    token: str
    expires: float  # epoch seconds

    @property
    def expired(self) -> bool:
        return time.time() >= self.expires - _EXPIRY_MARGIN_S

    def auth_header(self) -> dict[str, str]:
        raw = f"{self.user}:{self.token}".encode()
        return {"X-Devpi-Auth": base64.b64encode(raw).decode()}

    def __repr__(self) -> str:
        return f"Session(url={self.url!r}, user={self.user!r}, token=<hidden>)"


def _read_all() -> dict[str, dict[str, dict[str, object]]]:
    try:
        data = json.loads(sessions_path().read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_all(data: dict[str, dict[str, dict[str, object]]]) -> None:
    path = sessions_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths.atomic_write(path, json.dumps(data), mode=0o600)


def load(url: str, user: str) -> Session | None:
    entry = _read_all().get(url, {}).get(user)
    if not isinstance(entry, dict):
        return None
    token, expires = entry.get("token"), entry.get("expires")
    if not isinstance(token, str) or not isinstance(expires, int | float):
        return None
    return Session(url, user, token, float(expires))


def save(session: Session) -> None:
    data = _read_all()
    data.setdefault(session.url, {})[session.user] = {
        "token": session.token,
        "expires": session.expires,
    }
    _write_all(data)


def drop(url: str, user: str) -> bool:
    data = _read_all()
    users = data.get(url, {})
    if user not in users:
        return False
    del users[user]
    if not users:
        del data[url]
    _write_all(data)
    return True
