"""Secret values: a masked type and generation. (The keyring lookup lands with the helpers.)"""

from __future__ import annotations

import hmac
import secrets as _secrets


class Secret:
    """A secret string that never shows itself in repr, str, format or pickles."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str = "") -> None:
        self._value = value
        self.source = source

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret(***, source={self.source!r})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(type(self))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> object:
        raise TypeError("a Secret cannot be pickled")


def generate(nbytes: int = 32) -> Secret:
    return Secret(_secrets.token_urlsafe(nbytes), source="generated")
