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
from typing import TYPE_CHECKING

from thinkube_devpi import paths
from thinkube_devpi.errors import Error

if TYPE_CHECKING:
    from thinkube_devpi.secrets import Secret
    from thinkube_devpi.shell.api import DevpiAPI

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


class SessionFileError(Error, ValueError):
    """sessions.json cannot be used as it is. Nothing is written over it."""


def _read_all() -> dict[str, dict[str, dict[str, object]]]:
    path = sessions_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (ValueError, OSError) as exc:
        why = (exc.strerror or "unreadable") if isinstance(exc, OSError) else "not valid JSON"
        raise _corrupt(path, why) from None
    if not isinstance(data, dict) or not all(
        isinstance(users, dict) and all(isinstance(e, dict) for e in users.values())
        for users in data.values()
    ):
        raise _corrupt(path, "not a map of URL -> user -> token")
    return data


def check() -> None:
    """Raise :class:`SessionFileError` when sessions.json exists but cannot be used."""
    _read_all()


def _corrupt(path: Path, why: str) -> SessionFileError:
    return SessionFileError(
        f"{path} cannot be used ({why}); it holds only login tokens, so remove it and run "
        "tk-devpi login again (it was left as it is)"
    )


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


class LoginError(Error):
    """No valid login, and nothing to renew it with."""


@dataclass(frozen=True)
class Login:
    """Whose login at which server, where its password comes from, whether its token is kept.

    The helpers read the password from the keyring and keep the token in ``sessions.json``
    (``password=None, remember=True``); phase 88 logs in as root with the password from the
    cluster's Secret and keeps nothing on this machine (``password=..., remember=False``).
    """

    url: str
    user: str
    password: Secret | None = None  # None: the keyring's, under password_key(url, user)
    allow_plaintext: bool = False
    remember: bool = True

    def __repr__(self) -> str:
        return f"Login(url={self.url!r}, user={self.user!r}, remember={self.remember})"

    def renew(self, api: DevpiAPI) -> Session | None:
        """A new token from the password (saved when remembered), or None when there is none."""
        password = self.password
        if password is None:
            from thinkube_devpi import secrets

            password = secrets.lookup(
                password_key(self.url, self.user),
                interactive=False,
                allow_plaintext=self.allow_plaintext,
            )
        if password is None:
            return None
        new = api.login(self.user, password)
        if self.remember:
            save(new)
        return new

    def valid(self, api: DevpiAPI) -> Session:
        """The kept login if the server still accepts it, else a renewed one."""
        current = load(self.url, self.user) if self.remember else None
        if current is not None and not current.expired and api.auth_status(current) == "ok":
            return current
        renewed = self.renew(api)
        if renewed is None:
            state = "expired or was voided by the server" if current else "does not exist"
            raise LoginError(
                f"the login of {self.user!r} at {self.url} {state}, and the keyring holds no "
                "password to renew it: run tk-devpi login"
            )
        return renewed


def renew(url: str, user: str, api: DevpiAPI, *, allow_plaintext: bool = False) -> Session | None:
    """A new token from the password in the keyring (saved), or None when there is none."""
    return Login(url, user, allow_plaintext=allow_plaintext).renew(api)


def valid_session(url: str, user: str, api: DevpiAPI, *, allow_plaintext: bool = False) -> Session:
    """The stored login if the server still accepts it, else one renewed from the keyring."""
    return Login(url, user, allow_plaintext=allow_plaintext).valid(api)
