"""The Redis password (the secret phases 10-30 handle) shows up only in its Secret."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from fakes.controllers import Controllers
from fakes.kube_api import FakeKubeAPI
from leakcheck import files_under, find, process_argv
from thinkube_devpi.cli import main


def test_apply_keeps_the_redis_password_inside_its_secret(
    fake_kube: FakeKubeAPI,
    kubeconfig: Path,
    tmp_path: Path,
    isolated_home: Path,
    caplog: pytest.LogCaptureFixture,
    controllers: Controllers,
) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('domain = "example.com"\n')
    env = {"THINKUBE_DEVPI_CONFIG": str(cfg), "KUBECONFIG": str(kubeconfig)}
    caplog.set_level(logging.DEBUG)
    logging.getLogger().setLevel(logging.DEBUG)
    outputs = []
    with process_argv() as argv:
        core = ["--phase", "10", "--phase", "20", "--phase", "30"]
        for args in (
            ["install", "apply", *core, "--timeout", "10"],
            ["install", "apply", *core, "--force", "-o", "json"],
            ["install", "plan", "-o", "json"],
            ["install", "status"],
            ["install", "render", "--out", str(tmp_path / "rendered")],
        ):
            result = CliRunner().invoke(main, args, env=env)
            assert result.exit_code == 0, result.output
            outputs.append(result.output)

    secret = fake_kube.get("v1", "Secret", "ephemeral-redis-auth", "devpi")
    password = base64.b64decode(secret["data"]["password"]).decode()
    assert len(password) >= 32

    assert find(password, "\n".join(outputs)) == []
    assert find(password, caplog.text) == []
    assert find(password, "\n".join(argv)) == []
    for record in fake_kube.requests:
        if "/secrets" in record.path:
            continue
        assert find(password, record.body or b"") == [], record.path
    for api_version, kind in [
        ("v1", "ConfigMap"),
        ("apps/v1", "Deployment"),
        ("v1", "Service"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
        ("v1", "Namespace"),
    ]:
        for obj in fake_kube.list(api_version, kind):
            assert find(password, json.dumps(obj)) == [], f"{kind} {obj['metadata']['name']}"
    for path, data in files_under(isolated_home, tmp_path / "rendered"):
        assert find(password, data) == [], path
    # the rendered Secret lists its keys, without values
    import yaml

    docs = list(yaml.safe_load_all((tmp_path / "rendered" / "30-redis.yaml").read_text()))
    (rendered,) = [d for d in docs if d["kind"] == "Secret"]
    assert "data" not in rendered and "stringData" not in rendered
    assert "password (generated)" in rendered["metadata"]["annotations"]["thinkube-devpi/keys"]
