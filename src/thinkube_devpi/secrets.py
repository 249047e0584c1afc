"""Secret lookup (environment, system keyring, prompt) and a masked `Secret` type.

A `Secret` never shows its value by accident: `repr`, `str`, `format` and f-strings print a mask
with the secret's source, pickling and copying refuse, and comparison is constant-time. The value
comes out only through `reveal()`, so every place that uses it is easy to find.

The keyring holds entries under the service name ``thinkube-devpi``. A keyring backend with a
priority below 1 (for example keyrings.alt's PlaintextKeyring, which keyring picks silently
when it is installed) is refused unless the admin allows it explicitly, with the environment
variable ``THINKUBE_DEVPI_ALLOW_PLAINTEXT_KEYRING=1`` or a command's
``--allow-plaintext-keyring`` flag.

`keyring` is imported only when a keyring is actually used: it costs ~80 ms at start-up.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets as _stdlib_secrets
from typing import Any, NoReturn

from thinkube_devpi.errors import Error

KEYRING_SERVICE = "thinkube-devpi"
ALLOW_PLAINTEXT_ENV = "THINKUBE_DEVPI_ALLOW_PLAINTEXT_KEYRING"
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


class SecretError(Error):
    """A secret could not be read, stored or used. The message never contains a secret value."""


class KeyringUnavailable(SecretError):
    """No usable keyring backend exists on this machine."""


class KeyringRefused(SecretError):
    """A keyring backend exists but is not trusted (plaintext) and was not allowed explicitly."""


class Secret:
    """A secret string that only `reveal()` shows.

    `source` says where it came from ("from DEVPI_ADMIN_PASSWORD", "keyring", "prompt", "stdin",
    "generated") so plans and messages can say that without the value.
    """

    __slots__ = ("_value", "source")
    _value: str
    source: str

    def __init__(self, value: str, source: str = "given") -> None:
        if not isinstance(value, str):
            raise TypeError("Secret holds a str")
        object.__setattr__(self, "_value", value)
        object.__setattr__(self, "source", source)

    def reveal(self) -> str:
        """The secret value. Call this only where the value is sent or stored."""
        return self._value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Secret is read-only")

    def __repr__(self) -> str:
        return f"Secret(<hidden>, source={self.source!r})"

    def __str__(self) -> str:
        return "<secret>"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __len__(self) -> int:
        return len(self._value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            other_value = other.reveal()
        elif isinstance(other, str):
            other_value = other
        else:
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other_value.encode())

    def __hash__(self) -> int:
        # Equal secrets must hash equal; hashing the value would expose it to timing, so all
        # secrets share one bucket (they are never used as dict keys in bulk).
        return hash(Secret)

    def _refuse(self, *args: object) -> NoReturn:
        raise TypeError("a Secret cannot be pickled or copied; pass it on explicitly")

    __reduce__ = _refuse
    __reduce_ex__ = _refuse
    __getstate__ = _refuse
    __copy__ = _refuse
    __deepcopy__ = _refuse


# environment variables with names like these hold secrets (DEVPI_ADMIN_PASSWORD, ...)
_SECRET_VARIABLE = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|SECRET_KEY|ACCESS_KEY)$")


def forms(value: str) -> set[str]:
    """Every form in which ``value`` can show up in a message a server or a library wrote.

    Plain, JSON-escaped, URL-encoded (``quote`` and ``quote_plus``), base64 (standard and URL-safe,
    with and without padding) and hex. A value shorter than 4 characters is not worth hiding: it
    would blank out ordinary words.
    """
    import base64
    import json
    from urllib.parse import quote, quote_plus

    if len(value) < 4:
        return set()
    raw = value.encode()
    out = {
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value, safe=""),
        quote_plus(value),
        raw.hex(),
    }
    for enc in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
        out |= {enc, enc.rstrip("=")}
    return {f for f in out if len(f) >= 4}


def redact(text: str, values: Any, mask: str = "***") -> str:
    """``text`` with every form (see `forms`) of every value (str or Secret) replaced by ``mask``."""
    found: set[str] = set()
    for value in values:
        plain = value.reveal() if isinstance(value, Secret) else value
        if isinstance(plain, str):
            found |= forms(plain)
    for form in sorted(found, key=len, reverse=True):
        text = text.replace(form, mask)
    return text


def child_environ(**extra: str) -> dict[str, str]:
    """The environment for a process the product starts: the caller's, less every variable that
    holds a secret (a child never needs them, and /proc/<pid>/environ would show them)."""
    env = {k: v for k, v in os.environ.items() if not _SECRET_VARIABLE.search(k.upper())}
    env.update(extra)
    return env


def generate(nbytes: int = 32) -> Secret:
    """A new random secret: `nbytes` random bytes as URL-safe base64 without padding."""
    return Secret(_stdlib_secrets.token_urlsafe(nbytes), "generated")


def _plaintext_allowed(allow_plaintext: bool) -> bool:
    return allow_plaintext or os.environ.get(ALLOW_PLAINTEXT_ENV, "") in {"1", "true", "yes"}


def _backend_name(backend: Any) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def keyring_backend(allow_plaintext: bool = False) -> Any:
    """The active keyring backend, checked.

    Raises `KeyringUnavailable` when there is none (no desktop keyring on a headless machine) and
    `KeyringRefused` when its priority is below 1 (plaintext files) and plaintext was not allowed
    explicitly. `backend_description(backend)` names it for messages.
    """
    import keyring
    import keyring.errors

    try:
        backend = keyring.get_keyring()
    except Exception as exc:  # a broken PYTHON_KEYRING_BACKEND, for one
        raise KeyringUnavailable(
            f"the keyring could not be loaded ({type(exc).__name__}); set the secret in the "
            "environment instead (for example DEVPI_ADMIN_PASSWORD), or install and unlock a "
            "system keyring (Secret Service, KWallet, macOS Keychain)"
        ) from None
    # A chain of several backends writes to its first: judge the chain by that one.
    chained = list(getattr(backend, "backends", None) or [])
    judged = chained[0] if chained else backend
    name = _backend_name(judged)
    priority = _priority(judged)
    if name.startswith("keyring.backends.fail.") or priority <= 0:
        raise KeyringUnavailable(
            f"no keyring backend is available (active: {name}); set the secret in the environment "
            "instead (for example DEVPI_ADMIN_PASSWORD), or install and unlock a system keyring "
            "(Secret Service, KWallet, macOS Keychain)"
        )
    if priority < 1 and not _plaintext_allowed(allow_plaintext):
        raise KeyringRefused(
            f"the keyring backend {name} (priority {priority:g}) keeps secrets in a plain file; "
            f"refused. Use a system keyring, or allow it explicitly with {ALLOW_PLAINTEXT_ENV}=1 "
            "or --allow-plaintext-keyring"
        )
    return backend


def _priority(backend: Any) -> float:
    try:
        return float(type(backend).priority)
    except Exception:
        return 0.0


def backend_description(backend: Any) -> str:
    """A short human name for a backend: its class path and priority."""
    return f"{_backend_name(backend)} (priority {_priority(backend):g})"


def lookup(
    name: str,
    *,
    interactive: bool,
    allow_plaintext: bool = False,
    prompt: str | None = None,
) -> Secret | None:
    """Find the secret called `name`: the environment, then the keyring, then a prompt.

    The environment is read only when `name` looks like an environment variable name
    (``DEVPI_ADMIN_PASSWORD``); other names (``devpi:admin@https://host/``) are keyring entries
    only.
    A missing or refused keyring is skipped here (and the prompt still offered); use
    `keyring_backend()` first to report it. The prompt runs only when `interactive` is true.
    """
    if _ENV_NAME.fullmatch(name):
        value = os.environ.get(name)
        if value:
            return Secret(value, f"from {name}")
    try:
        backend = keyring_backend(allow_plaintext)
    except SecretError:
        backend = None
    if backend is not None:
        try:
            value = backend.get_password(KEYRING_SERVICE, name)
        except Exception as exc:
            raise SecretError(
                f"reading {name!r} from the keyring {_backend_name(backend)} failed "
                f"({type(exc).__name__})"
            ) from None
        if value:
            return Secret(value, "keyring")
    if interactive:
        import getpass

        value = getpass.getpass(prompt or f"{name}: ")
        if value:
            return Secret(value, "prompt")
    return None


def store(name: str, secret: Secret, *, allow_plaintext: bool = False) -> str:
    """Keep `secret` in the keyring under `name`. Returns the backend's description."""
    backend = keyring_backend(allow_plaintext)
    try:
        backend.set_password(KEYRING_SERVICE, name, secret.reveal())
    except Exception as exc:
        raise SecretError(
            f"storing {name!r} in the keyring {_backend_name(backend)} failed "
            f"({type(exc).__name__})"
        ) from None
    return backend_description(backend)


def forget(name: str, *, allow_plaintext: bool = True) -> bool:
    """Remove `name` from the keyring. True when something was removed.

    Removing is allowed from a plaintext keyring by default: forgetting a secret only makes things
    safer. A missing keyring means there is nothing to forget.
    """
    try:
        backend = keyring_backend(allow_plaintext)
    except KeyringUnavailable:
        return False
    import keyring.errors

    try:
        if backend.get_password(KEYRING_SERVICE, name) is None:
            return False
        backend.delete_password(KEYRING_SERVICE, name)
    except keyring.errors.PasswordDeleteError:
        return False
    except Exception as exc:
        raise SecretError(
            f"removing {name!r} from the keyring {_backend_name(backend)} failed "
            f"({type(exc).__name__})"
        ) from None
    return True
