"""tk-devpi install, as an admin types it."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from fakes.controllers import Controllers
from fakes.kube_api import FakeKubeAPI
from thinkube_devpi.cli import main


def invoke(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, args, env=env or {})
    return result.exit_code, result.output


def test_plan_without_a_cluster_lists_every_phase_in_plan_mode() -> None:
    code, out = invoke(["install", "plan", "-o", "json"], {"KUBECONFIG": "/nonexistent"})
    assert code == 0, out
    data = json.loads(out)
    assert data["cluster"]["plan_mode"] is True and "/nonexistent" in data["cluster"]["why"]
    assert data["placeholder_domain"] is True
    numbers = [p["number"] for p in data["phases"]]
    assert numbers == sorted(numbers) and {10, 20, 30, 40, 50, 60, 70, 80, 85, 86, 88, 89} <= set(
        numbers
    )
    redis = next(p for p in data["phases"] if p["name"] == "redis")
    secret = next(o for o in redis["objects"] if o["kind"] == "Secret")
    assert secret["secret_keys"]["password"] == "generated"
    code, out = invoke(["install", "plan"], {"KUBECONFIG": "/nonexistent"})
    assert "Plan mode" in out and "thinkube.local" in out


def test_render_writes_one_file_per_phase_and_secrets_without_data(tmp_path: Path) -> None:
    code, out = invoke(["install", "render", "--out", str(tmp_path / "out")])
    assert code == 0, out
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files[:3] == ["10-namespace.yaml", "20-storage.yaml", "30-redis.yaml"]
    for path in (tmp_path / "out").iterdir():
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "thinkube-devpi"
            if doc["kind"] == "Secret":
                assert "data" not in doc and "stringData" not in doc


def test_dry_run_against_a_cluster_writes_nothing(fake_kube: FakeKubeAPI, kubeconfig: Path) -> None:
    env = {"KUBECONFIG": str(kubeconfig), "THINKUBE_DEVPI_DOMAIN": "example.com"}
    code, out = invoke(["install", "apply", "--dry-run", "-o", "json"], env)
    assert code == 0, out
    events = [json.loads(line) for line in out.splitlines()]
    would = {e["ref"]["text"] for e in events if e["event"] == "ObjectApplied"}
    assert "Namespace devpi" in would and all(
        e["outcome"] == "would create" for e in events if e["event"] == "ObjectApplied"
    )
    assert fake_kube.writes() == []


def test_apply_then_status_then_rollback(
    fake_kube: FakeKubeAPI, kubeconfig: Path, controllers: Controllers
) -> None:
    env = {"KUBECONFIG": str(kubeconfig), "THINKUBE_DEVPI_DOMAIN": "example.com"}
    code, out = invoke(
        ["install", "apply", "--phase", "10", "--phase", "20", "--phase", "30", "--timeout", "10"],
        env,
    )
    assert code == 0, out
    assert "created" in out and "Namespace devpi" in out and "1/1 available" in out
    code, out = invoke(["install", "status", "-o", "json"], env)
    assert code == 0
    states = {row["name"]: row["state"] for row in json.loads(out)}
    assert states["namespace"] == states["storage"] == states["redis"] == "healthy"
    code, out = invoke(["install", "rollback", "--phase", "redis", "--yes"], env)
    assert code == 0, out
    assert (
        "deleted" in out
        and fake_kube.get("apps/v1", "Deployment", "ephemeral-redis", "devpi") is None
    )
    code, out = invoke(["install", "status", "--phase", "redis"], env)
    assert "missing" in out
    code, out = invoke(
        ["install", "rollback", "--phase", "10", "--phase", "20", "--phase", "30", "--yes"], env
    )
    assert code == 0, out
    assert "kept  PersistentVolumeClaim devpi/devpi-data-pvc: package data is kept" in out
    assert "kept  Namespace devpi: it still holds PersistentVolumeClaim devpi-data-pvc" in out


def test_failed_apply_exits_non_zero_with_hint(fake_kube: FakeKubeAPI, kubeconfig: Path) -> None:
    fake_kube.deny("patch", "namespaces")
    env = {"KUBECONFIG": str(kubeconfig), "THINKUBE_DEVPI_DOMAIN": "example.com"}
    code, out = invoke(["install", "apply", "--phase", "10"], env)
    assert code == 1
    assert "failed" in out and "HTTP 403" in out and "RBAC" in out


def test_config_init_writes_a_file_that_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    code, out = invoke(
        [
            "config",
            "init",
            "--config",
            str(path),
            "--domain",
            "example.com",
            "--storage-size",
            "20Gi",
        ]
    )
    assert code == 0, out
    code, out = invoke(["config", "show", "--config", str(path), "-o", "json"])
    data = json.loads(out)
    assert data["settings"]["storage_size"] == "20Gi"
    assert (
        data["derived"]["dashboard"] == "devpi.example.com"
        and data["derived"]["api"] == "devpi-api.example.com"
    )
    code, out = invoke(["config", "init", "--config", str(path), "--domain", "example.com"])
    assert code != 0 and "--force" in out


def test_preflight_names_what_is_missing(
    fake_kube: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    from fakes.keycloak import FakeKeycloak
    from fakes.platform import seed_cluster
    from fakes.tls import shared_pki

    with FakeKeycloak(tls=shared_pki()) as kc:
        env = {
            "KUBECONFIG": str(kubeconfig),
            "THINKUBE_DEVPI_DOMAIN": "example.com",
            "THINKUBE_DEVPI_KEYCLOAK_URL": kc.url,
            "THINKUBE_DEVPI_KEYCLOAK_CA_FILE": shared_pki().ca_file,
        }
        code, out = invoke(["install", "preflight", "-o", "json"], env)
        checks = {c["check"]: c for c in json.loads(out)}
        assert code == 1
        assert checks["cluster reachable"]["ok"] is True
        assert checks["Argo Workflows CRDs"]["ok"] is True
        gateway = checks["Gateway gateway-system/thinkube-gateway"]
        assert gateway["ok"] is False and "not found" in gateway["detail"]
        assert "gateway peer" not in checks  # nothing to check it against yet
        assert checks["Keycloak issuer"]["ok"] is True
        seed_cluster(fake_kube)
        code, out = invoke(["install", "preflight"], env)
        assert code == 0, out
        assert "FAIL" not in out
    assert fake_kube.writes() == []  # preflight only reads


def test_status_watch_follows_the_cluster(
    fake_kube: FakeKubeAPI, kubeconfig: Path, controllers: Controllers
) -> None:
    import threading

    env = {"KUBECONFIG": str(kubeconfig), "THINKUBE_DEVPI_DOMAIN": "example.com"}
    code, out = invoke(
        ["install", "apply", "--phase", "10", "--phase", "20", "--timeout", "10"], env
    )
    assert code == 0, out
    # while the watch runs, redis appears and rolls out
    later = threading.Timer(
        2.5, lambda: invoke(["install", "apply", "--phase", "30", "--timeout", "10"], env)
    )
    later.start()
    code, out = invoke(["install", "status", "--watch", "--duration", "6", "-o", "json"], env)
    later.join()
    assert code == 0, out
    frames = [json.loads(line) for line in out.splitlines()]
    assert frames, out
    last = frames[-1]
    assert ("devpi-data-pvc", "Bound") in {
        (r["name"], r["status"]) for r in last["objects"]["PersistentVolumeClaim"]
    }
    # the redis Deployment was not there when the watch began: a later frame shows it
    assert not any(
        r["name"] == "ephemeral-redis" for r in frames[0]["objects"].get("Deployment", [])
    )
    assert any(r["name"] == "ephemeral-redis" for r in last["objects"]["Deployment"])
    assert {p["name"]: p["state"] for p in last["phases"]}["namespace"] == "healthy"
