"""The product's one error root: every error it raises on purpose derives from :class:`Error`.

An error carries a ``message`` (what went wrong, naming the value) and a ``hint`` (what to do
about it). A face catches :class:`Error` once (the ``tk-devpi`` group, the TUI's worker handler)
and shows both; anything else is a bug and keeps its traceback. This module imports nothing of
the product, so every layer can use it. Messages never hold a secret value.
"""

from __future__ import annotations


class Error(Exception):
    """Something the user can act on: ``message`` says what, ``hint`` (may be empty) what to do."""

    def __init__(self, message: str, hint: str = "", *, setting: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        # what fixes it, when one thing does: a setting (a field of the settings), a secret (its
        # variable's name, upper case) or a run option (``adopt``, ``force_conflicts``); the TUI
        # then says where to set it, instead of ``hint``'s command or flag
        self.setting = setting

    def __str__(self) -> str:
        if not self.hint:
            return self.message
        end = "" if self.message.rstrip().endswith((".", "!", "?", ":")) else "."
        return f"{self.message}{end} {self.hint}"
