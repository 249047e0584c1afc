"""Helpers' test setup: a test HOME, a plaintext keyring allowed explicitly, and a CLI runner."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from thinkube_devpi.cli import main

Run = Callable[..., Result]


@pytest.fixture
def tk(helpers_home: Path) -> Run:
    """Run `tk-devpi ARGS...` in-process; `input=` feeds stdin. Fails loudly on crashes."""

    def run(*args: str, input: str | None = None, ok: bool | None = None) -> Result:
        result = CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)
        if ok is True:
            assert result.exit_code == 0, result.output
        if ok is False:
            assert result.exit_code != 0, result.output
        return result

    return run


def as_json(result: Result) -> dict:
    return json.loads(result.stdout)
