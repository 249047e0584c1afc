"""Helpers' test setup: reading a command's JSON (the `tk` runner is the root conftest's)."""

from __future__ import annotations

import json
from collections.abc import Callable

from click.testing import Result

Run = Callable[..., Result]


def as_json(result: Result) -> dict:
    return json.loads(result.stdout)
