"""Leaving devpi-client (pinned: devpi-client==7.3.0) in the same state as the helpers.

Of the two ways to log devpi-client in without a password on a command line, this module takes the
first: it calls devpi-client's entry point **in-process** (`devpi.main.initmain` + the subcommand's
function, exactly what the `devpi` script runs), and answers devpi-client's own password hook
(`devpiclient_get_password`) from the `Secret` we hold. No child process is started, so no argv or
environment ever sees the password. devpi-client then keeps its token in ``auth.json`` in its client
dir (``DEVPI_CLIENTDIR``, default ``~/.devpi/client``), so plain `devpi` commands work afterwards.

devpi-client is imported only here, only by login, logout and use.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Any

from thinkube_devpi.secrets import Secret


@dataclass
class ClientResult:
    ok: bool
    output: str  # what devpi-client printed (never contains the password: it is sent, not shown)


def _password_plugin(secret: Secret) -> object:
    """A devpi-client plugin answering its password hook, so it never prompts."""
    from devpi.main import hookimpl

    class PasswordPlugin:
        @hookimpl(tryfirst=True)
        def devpiclient_get_password(self, url: str, username: str) -> str:
            return secret.reveal()

    return PasswordPlugin()


def _run(argv: list[str], password: Secret | None = None) -> ClientResult:
    from devpi.main import initmain

    out = io.StringIO()
    args = ["devpi", *argv]
    clientdir = os.environ.get("DEVPI_CLIENTDIR")
    if clientdir:
        args[1:1] = ["--clientdir", clientdir]
    try:
        hub, method = initmain(args, file=out)
    except SystemExit:
        return ClientResult(False, out.getvalue())
    if password is not None:
        hub.pm.register(_password_plugin(password), name="thinkube-devpi-password")
    _bound(hub)
    try:
        code = method(hub, hub.args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:  # devpi-client raises plain exceptions on network faults
        out.write(f"{type(exc).__name__}: {exc}\n")
        code = 1
    finally:
        hub.close()
    text = out.getvalue()
    if password is not None:  # a server may echo the login request in its error
        from thinkube_devpi.secrets import redact

        text = redact(text, [password])
    return ClientResult(not code, text)


def _bound(hub: Any) -> None:
    """devpi-client's requests session has no timeout: give each request the helpers' own."""
    from thinkube_devpi.shell.api import CONNECT_TIMEOUT, READ_TIMEOUT, _seconds

    bounds = (
        _seconds("THINKUBE_DEVPI_CONNECT_TIMEOUT", CONNECT_TIMEOUT),
        _seconds("THINKUBE_DEVPI_READ_TIMEOUT", READ_TIMEOUT),
    )
    http = getattr(hub, "http", None)
    if http is None:
        return
    request = http.request

    def bounded(method: str, url: str, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", bounds)
        return request(method, url, **kwargs)

    http.request = bounded


def use(index_url: str) -> ClientResult:
    """`devpi use INDEX_URL`: select the server (and index) for devpi-client."""
    return _run(["use", index_url])


def login(user: str, password: Secret) -> ClientResult:
    """`devpi login USER`, the password given to devpi-client's hook in this process."""
    return _run(["login", user], password)


def logoff() -> ClientResult:
    """`devpi logoff`."""
    return _run(["logoff"])
