"""Run the npm registry's ArgoCD validator (tests/validators) on Applications, with Node."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

VALIDATORS = Path(__file__).resolve().parent.parent / "validators"
PACKAGE = VALIDATORS / "node_modules" / "@kubernetes-models" / "argo-cd"


def validate_applications(objs: list[dict[str, Any]]) -> list[str | None]:
    """None for each valid Application, else the validator's message. Skips without Node or the package."""
    node = shutil.which("node")
    if node is None or not PACKAGE.is_dir():
        if os.environ.get("CI"):  # CI installs them (scripts/test.sh): missing there is a failure
            pytest.fail("Node or tests/validators/node_modules missing in CI")
        pytest.skip("Node or tests/validators/node_modules missing: run `npm ci` in tests/validators")
    done = subprocess.run(
        [node, str(VALIDATORS / "application.cjs")],
        input=json.dumps(objs),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=VALIDATORS,
    )
    return [None if r["ok"] else r["error"] for r in json.loads(done.stdout)]
