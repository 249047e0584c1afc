"""The product's one error root: every error it raises on purpose derives from :class:`Error`.

An error carries a ``message`` (what went wrong, naming the value) and a ``hint`` (what to do
about it). A face catches :class:`Error` once (the ``tk-devpi`` group, the TUI's worker handler)
and shows both; anything else is a bug and keeps its traceback. This module imports nothing of
the product, so every layer can use it. Messages never hold a secret value.
"""

from __future__ import annotations


class Error(Exception):
    """Something the user can act on: ``message`` says what, ``hint`` (may be empty) what to do."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message + (f" {self.hint}" if self.hint else "")
