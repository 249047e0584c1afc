"""Run the npm registry's generated validators (tests/validators) with Node.

ArgoCD Applications (@kubernetes-models/argo-cd 2.7.2) and Gateway API HTTPRoutes
(@kubernetes-models/gateway-api 0.5.1): the releases that install on Node 20.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

VALIDATORS = Path(__file__).resolve().parent.parent / "validators"
PACKAGES = {"Application": "argo-cd", "HTTPRoute": "gateway-api"}


def validate(kind: str, objs: list[dict[str, Any]]) -> list[str | None]:
    """None for each valid object, else the validator's message. Skips without Node or the
    package, except in CI (scripts/test.sh installs them), where that fails."""
    node = shutil.which("node")
    package = VALIDATORS / "node_modules" / "@kubernetes-models" / PACKAGES[kind]
    if node is None or not package.is_dir():
        if os.environ.get("CI"):
            pytest.fail("Node or tests/validators/node_modules missing in CI")
        pytest.skip("Node or tests/validators/node_modules missing: run `npm ci` in tests/validators")
    done = subprocess.run(
        [node, str(VALIDATORS / "validate.cjs"), kind],
        input=json.dumps(objs),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=VALIDATORS,
    )
    return [None if r["ok"] else r["error"] for r in json.loads(done.stdout)]


def validate_applications(objs: list[dict[str, Any]]) -> list[str | None]:
    return validate("Application", objs)


def validate_httproutes(objs: list[dict[str, Any]]) -> list[str | None]:
    return validate("HTTPRoute", objs)
