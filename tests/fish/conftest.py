"""Real fish for the fish tests: skipped only when fish is missing and CI is unset."""

from __future__ import annotations

import os
import shutil
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
