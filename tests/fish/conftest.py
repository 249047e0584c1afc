"""Real fish for the fish tests: skipped only when fish is missing and CI is unset."""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def fish_bin() -> str:
    found = shutil.which("fish")
    if not found:
        if os.environ.get("CI"):
            pytest.fail("fish is not installed, and CI is set: .ci/run must install it")
        pytest.skip("fish is not installed (apt-get install -y fish)")
    return found


@pytest.fixture
def tk_devpi_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `tk-devpi` on PATH that runs this checkout's source (the installed one may be another)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "tk-devpi"
    script.write_text(
        f'#!/bin/sh\nPYTHONPATH={SRC} exec {sys.executable} -m thinkube_devpi.cli "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return script
