"""The control plane itself behaves as a real cluster does: what the installer's tests rely on."""

from __future__ import annotations

import json
import re
import secrets
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client
from kubernetes.dynamic.exceptions import DynamicApiError

from real_cluster.harness import RealCluster, cluster_dir, run_script

pytestmark = pytest.mark.real_cluster


@pytest.fixture
def namespace(cluster: RealCluster) -> Iterator[str]:
    name = f"smoke-{secrets.token_hex(3)}"
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": name,
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                },
            },
        },
        "smoke-test",
    )
    yield name
    cluster.delete("v1", "Namespace", name)


def restricted_pod_spec() -> dict[str, Any]:
    return {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "main",
                "image": "registry.example/app:1",
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
    }


def test_it_is_the_pinned_release_on_loopback_with_tls_and_rbac(cluster: RealCluster) -> None:
    version = client.VersionApi(cluster.api).get_code()
    assert version.git_version == "v1.37.2"
    server = cluster.api.configuration.host
    assert re.fullmatch(r"https://127\.0\.0\.1:\d+", server), server
    # anonymous requests get nothing but the public health endpoints
    ca = ssl.create_default_context(cafile=cluster.api.configuration.ssl_ca_cert)
    assert httpx.get(f"{server}/api/v1/namespaces", verify=ca, timeout=5).status_code in (401, 403)
    assert httpx.get(f"{server}/readyz", verify=ca, timeout=5).text == "ok"


def test_the_thinkube_shape_is_there(cluster: RealCluster) -> None:
    for ns in ("argo", "argocd", "gateway-system", "envoy-gateway-system", "keycloak"):
        assert cluster.get("v1", "Namespace", ns) is not None, ns
    gateway = cluster.get(
        "gateway.networking.k8s.io/v1", "Gateway", "thinkube-gateway", "gateway-system"
    )
    assert gateway is not None
    assert [(item["name"], item["port"]) for item in gateway["spec"]["listeners"]] == [
        ("http", 80),
        ("https", 443),
    ]
    assert cluster.get("v1", "Secret", "example-com-tls", "default")["type"] == "kubernetes.io/tls"
    for api_version, kind in (
        ("argoproj.io/v1alpha1", "WorkflowTemplate"),
        ("argoproj.io/v1alpha1", "Workflow"),
        ("argoproj.io/v1alpha1", "Application"),
        ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ):
        assert cluster.resource(api_version, kind).namespaced
    assert cluster.list("networking.k8s.io/v1", "IngressClass") == []
    classes = cluster.list("storage.k8s.io/v1", "StorageClass")
    assert [
        c["metadata"]["name"]
        for c in classes
        if (c["metadata"].get("annotations") or {}).get(
            "storageclass.kubernetes.io/is-default-class"
        )
        == "true"
    ] == ["test-bed-hostpath"]


def test_a_deployment_gets_running_ready_pods_on_kwok_nodes(
    cluster: RealCluster, namespace: str
) -> None:
    cluster.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": restricted_pod_spec()},
            },
        },
        "smoke-test",
    )
    cluster.wait(
        "Deployment web available",
        lambda: (
            (cluster.get("apps/v1", "Deployment", "web", namespace).get("status") or {}).get(
                "availableReplicas"
            )
            == 2
        ),
    )
    pods = cluster.list("v1", "Pod", namespace)
    assert {p["status"]["phase"] for p in pods} == {"Running"}
    assert {p["spec"]["nodeName"] for p in pods} <= {"kwok-node-0", "kwok-node-1"}
    # the real ServiceAccount admission plugin mounted a projected token volume
    assert any("projected" in v for v in pods[0]["spec"]["volumes"])


def test_pod_security_restricted_refuses_a_root_pod(cluster: RealCluster, namespace: str) -> None:
    with pytest.raises(DynamicApiError) as err:
        cluster.create(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "root", "namespace": namespace},
                "spec": {"containers": [{"name": "main", "image": "registry.example/app:1"}]},
            }
        )
    assert err.value.status == 403
    assert 'violates PodSecurity "restricted:latest"' in json.loads(err.value.body)["message"]


def test_a_job_succeeds_and_a_claim_binds(cluster: RealCluster, namespace: str) -> None:
    spec = restricted_pod_spec() | {"restartPolicy": "Never"}
    cluster.apply(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "once", "namespace": namespace},
            "spec": {"template": {"spec": spec}},
        },
        "smoke-test",
    )
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": namespace},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "5120Mi"}},
            },
        },
        "smoke-test",
    )

    def complete() -> bool:
        job = cluster.get("batch/v1", "Job", "once", namespace) or {}
        return any(
            c["type"] == "Complete" and c["status"] == "True"
            for c in (job.get("status") or {}).get("conditions", [])
        )

    cluster.wait("Job once complete", complete)
    pvc = cluster.wait(
        "PVC data bound",
        lambda: (
            (claim := cluster.get("v1", "PersistentVolumeClaim", "data", namespace))
            and claim["status"].get("phase") == "Bound"
            and claim
        ),
    )
    assert (
        pvc["spec"]["storageClassName"] == "test-bed-hostpath"
    )  # the DefaultStorageClass admission
    assert pvc["spec"]["resources"]["requests"]["storage"] == "5Gi"  # canonicalised by the server


def test_httproute_goes_through_the_gateway_api_crd_validation(
    cluster: RealCluster, namespace: str
) -> None:
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "r", "namespace": namespace},
        "spec": {
            "parentRefs": [
                {"name": "thinkube-gateway", "namespace": "gateway-system", "sectionName": "https"}
            ],
            "hostnames": ["app.example.com"],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    # CEL: a path prefix must start with "/" ... and the backend's port is required
                    "filters": [
                        {
                            "type": "RequestHeaderModifier",
                            "requestHeaderModifier": {"remove": ["X-A"]},
                        }
                    ],
                    "backendRefs": [{"name": "svc", "port": 80}],
                }
            ],
        },
    }
    assert cluster.apply(route, "smoke-test")["metadata"]["name"] == "r"
    bad = {**route, "metadata": {"name": "bad", "namespace": namespace}}
    bad["spec"] = {
        **route["spec"],
        "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "no-slash"}}]}],
    }
    with pytest.raises(DynamicApiError) as err:
        cluster.apply(bad, "smoke-test")
    assert err.value.status == 422
    message = json.loads(err.value.body)["message"]
    assert "must be an absolute path" in message or "value must" in message, message


def test_namespace_deletion_finishes(cluster: RealCluster) -> None:
    name = f"gone-{secrets.token_hex(3)}"
    cluster.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}, "smoke-test"
    )
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": name},
            "data": {"a": "b"},
        },
        "smoke-test",
    )
    cluster.delete("v1", "Namespace", name)
    assert cluster.get("v1", "Namespace", name)["status"]["phase"] == "Terminating"
    cluster.wait(f"namespace {name} gone", lambda: cluster.get("v1", "Namespace", name) is None)


def listeners_of(pids: list[int]) -> list[str]:
    out = subprocess.run(["ss", "-Htlnp"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if any(f"pid={pid}," in line for pid in pids)]


def test_up_listens_on_loopback_only_and_down_leaves_nothing(
    cluster: RealCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second control plane in a scratch directory: every listener on 127.0.0.1, and after
    `down` none of its processes and none of its ports are left."""
    scratch = tmp_path / "cluster"
    scratch.mkdir()
    (scratch / "bin").symlink_to(cluster_dir() / "bin")
    monkeypatch.setenv("CLUSTER_DIR", str(scratch))
    try:
        up = run_script("up", timeout=600)
        assert up.returncode == 0, up.stderr
        assert f"export KUBECONFIG={scratch}/kubeconfig" in up.stdout
        pids = [int(p.read_text()) for p in (scratch / "run").glob("*.pid")]
        assert len(pids) == 6
        listening = listeners_of(pids)
        assert listening, "nothing listens"
        for line in listening:
            local = line.split()[3]
            assert local.startswith("127.0.0.1:"), line
        ports = [int(line.split()[3].rsplit(":", 1)[1]) for line in listening]
        down = run_script("down", timeout=120)
        assert down.returncode == 0, down.stderr
    finally:
        run_script("down", timeout=120)
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"process {pid} left behind"
    out = subprocess.run(["ss", "-Htln"], capture_output=True, text=True, check=True).stdout
    for port in ports:
        assert f":{port} " not in out, f"port {port} still listening"
