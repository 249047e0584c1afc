"""What the local phases (85 cli, 86 shell) wrote on this machine, so rollback undoes exactly that.

Kept in ``installer-local.json`` in the user state dir. It records paths and backups only, never a
secret.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from thinkube_devpi import paths


def _path() -> Path:
    return paths.state_dir() / "installer-local.json"


def read(phase: str) -> dict[str, Any]:
    try:
        data = json.loads(_path().read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    entry = data.get(phase) if isinstance(data, dict) else None
    return entry if isinstance(entry, dict) else {}


def write(phase: str, entry: dict[str, Any] | None) -> None:
    path = _path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        data = {}
    if entry:
        data[phase] = entry
    else:
        data.pop(phase, None)
    paths.atomic_write(path, json.dumps(data, indent=2, sort_keys=True))


def flag(name: str, ctx: object) -> bool:
    """An admin's yes/no for a local step: a Context attribute when the UI set one, else the
    environment variable THINKUBE_DEVPI_<NAME>=1."""
    value = getattr(ctx, name, None)
    if isinstance(value, bool):
        return value
    return os.environ.get(f"THINKUBE_DEVPI_{name.upper()}", "").lower() in {"1", "true", "yes"}
