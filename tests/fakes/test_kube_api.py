"""The fake kube-apiserver, driven by the unchanged official kubernetes client over HTTP."""

from __future__ import annotations

import base64
import copy
import json
import threading
import time
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import urllib3
from kubernetes import client, config, dynamic, watch
from kubernetes.client.rest import ApiException
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from fakes.kube_api import FakeKubeAPI

NS = "devpi"
MANAGER = "thinkube-devpi"


def deployment(name: str = "devpi", image: str = "devpi:1", replicas: int | None = None) -> dict:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {
                "containers": [
                    {"name": "server", "image": image, "ports": [{"containerPort": 3141}]}
                ]
            },
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": {"app.kubernetes.io/managed-by": MANAGER},
        },
        "spec": spec,
    }


def status_of(e: ApiException) -> dict:
    body = json.loads(e.body)
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
    assert body["code"] == e.status
    return body


@pytest.fixture
def api(fake_kube: FakeKubeAPI) -> client.ApiClient:
    fake_kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    return fake_kube.api_client()


@pytest.fixture
def dyn(api: client.ApiClient, tmp_path: Path) -> dynamic.DynamicClient:
    return dynamic.DynamicClient(api, cache_file=str(tmp_path / "discovery.json"))


def apply(dyn: dynamic.DynamicClient, body: dict, manager: str = MANAGER, **kw: Any) -> Any:
    res = dyn.resources.get(api_version=body["apiVersion"], kind=body["kind"])
    return res.server_side_apply(body=body, field_manager=manager, **kw)


# ---- discovery ----------------------------------------------------------------------------------


def raw_get(fake: FakeKubeAPI, path: str) -> tuple[int, Any]:
    r = urllib3.PoolManager().request(
        "GET", fake.url + path, headers={"Authorization": f"Bearer {fake.token}"}
    )
    return r.status, json.loads(r.data)


def test_discovery_serves_every_advertised_group(
    dyn: dynamic.DynamicClient,
    api: client.ApiClient,
    fake_kube: FakeKubeAPI,
) -> None:
    version = client.VersionApi(api).get_code()
    assert version.major == "1" and version.git_version.startswith("v1.31")
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert {"apps", "batch", "argoproj.io", "gateway.networking.k8s.io"} <= groups
    for api_version, kind in [
        ("v1", "Secret"),
        ("apps/v1", "Deployment"),
        ("batch/v1", "Job"),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ("networking.k8s.io/v1", "Ingress"),
        ("storage.k8s.io/v1", "StorageClass"),
        ("argoproj.io/v1alpha1", "Workflow"),
        ("argoproj.io/v1alpha1", "Application"),
        ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ]:
        assert dyn.resources.get(api_version=api_version, kind=kind).kind == kind
    # a bare "v1" lookup walks every */v1 group; all must be served
    assert dyn.resources.get(api_version="v1", kind="Gateway").group == "gateway.networking.k8s.io"
    pods = dyn.resources.get(api_version="v1", kind="Pod")
    assert pods.namespaced and "po" in pods.short_names
    code, raw = raw_get(fake_kube, "/api/v1")
    assert code == 200 and raw["kind"] == "APIResourceList"
    names = {r["name"] for r in raw["resources"]}
    assert {"pods", "pods/log", "pods/status", "secrets", "namespaces/status"} <= names
    crds = dyn.resources.get(
        api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition"
    ).get()
    assert "workflows.argoproj.io" in {c.metadata.name for c in crds.items}


def test_disabled_crd_group_is_absent(tmp_path: Path) -> None:
    with FakeKubeAPI(crds=("gateway",)) as fake:
        dyn = dynamic.DynamicClient(fake.api_client(), cache_file=str(tmp_path / "d.json"))
        with pytest.raises(ResourceNotFoundError):
            dyn.resources.get(api_version="argoproj.io/v1alpha1", kind="Workflow")
        assert dyn.resources.get(api_version="gateway.networking.k8s.io/v1", kind="HTTPRoute")
        code, body = raw_get(fake, "/apis/argoproj.io/v1alpha1/namespaces/default/workflows")
        assert code == 404 and body["reason"] == "NotFound"
        crds = fake.list("apiextensions.k8s.io/v1", "CustomResourceDefinition")
        assert all(c["spec"]["group"] == "gateway.networking.k8s.io" for c in crds)


# ---- typed CRUD ---------------------------------------------------------------------------------


def test_typed_crud_and_errors(api: client.ApiClient, fake_kube: FakeKubeAPI) -> None:
    v1 = client.CoreV1Api(api)
    secret = {
        "metadata": {"name": "pw", "labels": {"a": "1"}},
        "stringData": {"password": "s3cret"},
    }
    created = v1.create_namespaced_secret(NS, secret)
    assert created.data == {"password": base64.b64encode(b"s3cret").decode()}
    assert created.string_data is None and created.type == "Opaque"
    assert created.metadata.uid and created.metadata.creation_timestamp
    with pytest.raises(ApiException) as e:
        v1.create_namespaced_secret(NS, secret)
    body = status_of(e.value)
    assert (e.value.status, body["reason"]) == (409, "AlreadyExists")
    assert body["message"] == 'secrets "pw" already exists'
    assert (
        v1.read_namespaced_secret("pw", NS).metadata.resource_version
        == created.metadata.resource_version
    )
    lst = v1.list_secret_for_all_namespaces()
    assert [s.metadata.name for s in lst.items] == ["pw"] and lst.metadata.resource_version
    deleted = v1.delete_namespaced_secret("pw", NS, propagation_policy="Foreground")
    assert deleted["status"] == "Success" and deleted["details"]["name"] == "pw"
    with pytest.raises(ApiException) as e:
        v1.read_namespaced_secret("pw", NS)
    body = status_of(e.value)
    assert (body["reason"], body["message"], body["details"]) == (
        "NotFound",
        'secrets "pw" not found',
        {"name": "pw", "kind": "secrets"},
    )
    with pytest.raises(ApiException) as e:
        v1.create_namespaced_config_map("nope", {"metadata": {"name": "c"}})
    assert status_of(e.value)["message"] == 'namespaces "nope" not found'


def test_put_merge_and_json_patch(api: client.ApiClient, fake_kube: FakeKubeAPI) -> None:
    v1 = client.CoreV1Api(api)
    cm = v1.create_namespaced_config_map(NS, {"metadata": {"name": "c"}, "data": {"a": "1"}})
    cm.data["b"] = "2"
    replaced = v1.replace_namespaced_config_map("c", NS, cm)
    assert replaced.data == {"a": "1", "b": "2"}
    # a stale resourceVersion on PUT is a 409 Conflict
    with pytest.raises(ApiException) as e:
        v1.replace_namespaced_config_map("c", NS, cm)
    assert status_of(e.value)["reason"] == "Conflict"
    merged = v1.patch_namespaced_config_map(
        "c", NS, {"data": {"a": None}}
    )  # strategic for built-ins
    assert merged.data == {"b": "2"}
    jp = v1.patch_namespaced_config_map("c", NS, [{"op": "add", "path": "/data/z", "value": "9"}])
    assert jp.data == {"b": "2", "z": "9"}
    same = v1.patch_namespaced_config_map("c", NS, {"data": {"z": "9"}})
    assert same.metadata.resource_version == jp.metadata.resource_version
    assert [(r.method, r.content_type) for r in fake_kube.writes()][-3:] == [
        ("PATCH", "application/strategic-merge-patch+json"),
        ("PATCH", "application/json-patch+json"),
        ("PATCH", "application/strategic-merge-patch+json"),
    ]


# ---- server-side apply -----------------------------------------------------------------------


def test_apply_creates_then_reapply_is_a_noop(dyn: dynamic.DynamicClient) -> None:
    first = apply(dyn, deployment())
    assert first.metadata.generation == 1
    again = apply(dyn, deployment())
    assert again.metadata.resourceVersion == first.metadata.resourceVersion
    assert again.metadata.generation == 1
    mf = again.metadata.managedFields
    assert [(m.manager, m.operation) for m in mf] == [(MANAGER, "Apply")]
    assert "f:replicas" not in mf[0].fieldsV1["f:spec"]  # defaulted, not owned
    relabelled = deployment()
    relabelled["metadata"]["labels"]["extra"] = "x"
    meta_only = apply(dyn, relabelled)
    assert meta_only.metadata.resourceVersion != first.metadata.resourceVersion
    assert meta_only.metadata.generation == 1  # metadata does not move generation
    spec_change = apply(dyn, deployment(image="devpi:2"))
    assert spec_change.metadata.generation == 2
    assert "extra" not in spec_change.metadata.labels  # owned, no longer sent: removed


def test_apply_merges_containers_by_name(dyn: dynamic.DynamicClient) -> None:
    apply(dyn, deployment())
    sidecar = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "devpi", "namespace": NS},
        "spec": {"template": {"spec": {"containers": [{"name": "proxy", "image": "proxy:1"}]}}},
    }
    both = apply(dyn, sidecar, manager="other")
    assert [c.name for c in both.spec.template.spec.containers] == ["proxy", "server"] or [
        c.name for c in both.spec.template.spec.containers
    ] == ["server", "proxy"]
    again = apply(dyn, deployment())
    assert {c.name for c in again.spec.template.spec.containers} == {"server", "proxy"}
    assert again.metadata.resourceVersion == both.metadata.resourceVersion


def test_apply_conflict_and_force(dyn: dynamic.DynamicClient) -> None:
    apply(dyn, deployment(replicas=1))
    res = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    res.patch(
        name="devpi",
        namespace=NS,
        body={"spec": {"replicas": 3}},
        content_type="application/merge-patch+json",
        field_manager="kubectl",
    )
    with pytest.raises(ApiException) as e:
        apply(dyn, deployment(replicas=1))
    body = status_of(e.value)
    assert (e.value.status, body["reason"]) == (409, "Conflict")
    assert body["message"] == (
        'Apply failed with 1 conflict: conflict with "kubectl" using apps/v1: .spec.replicas'
    )
    assert body["details"]["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "kubectl" using apps/v1',
            "field": ".spec.replicas",
        }
    ]
    # the same value as the other manager is shared ownership, not a conflict
    shared = apply(dyn, deployment(replicas=3))
    assert shared.spec.replicas == 3
    forced = apply(dyn, deployment(replicas=2), force_conflicts=True)
    assert forced.spec.replicas == 2
    owners = {m["manager"]: m["fieldsV1"] for m in forced.to_dict()["metadata"]["managedFields"]}
    assert "f:replicas" in owners[MANAGER]["f:spec"]
    assert "kubectl" not in owners or "f:replicas" not in owners["kubectl"].get("f:spec", {})


def test_apply_in_missing_namespace_is_404(dyn: dynamic.DynamicClient) -> None:
    body = deployment()
    body["metadata"]["namespace"] = "missing"
    with pytest.raises(ApiException) as e:
        apply(dyn, body)
    assert status_of(e.value)["message"] == 'namespaces "missing" not found'


def test_invalid_deployment_is_422(dyn: dynamic.DynamicClient, fake_kube: FakeKubeAPI) -> None:
    bad = deployment()
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = 7
    with pytest.raises(kubernetes_validate.ValidationError):  # what the validator itself says
        kubernetes_validate.validate(bad, "1.31", strict=True)
    with pytest.raises(ApiException) as e:
        apply(dyn, bad)
    body = status_of(e.value)
    assert (e.value.status, body["reason"]) == (422, "Invalid")
    assert body["message"].startswith('Deployment.apps "devpi" is invalid: ')
    assert "imagePullPolicy" in body["message"]
    assert body["details"]["kind"] == "Deployment"
    unknown = deployment()
    unknown["spec"]["replica"] = 2  # strict schema: unknown fields are refused
    with pytest.raises(ApiException) as e:
        apply(dyn, unknown)
    assert e.value.status == 422
    mismatch = deployment()
    mismatch["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    with pytest.raises(ApiException) as e:
        apply(dyn, mismatch)
    assert "`selector` does not match template `labels`" in status_of(e.value)["message"]
    assert fake_kube.get("apps/v1", "Deployment", "devpi", NS) is None


def test_strategic_merge_on_custom_resource_is_415(dyn: dynamic.DynamicClient) -> None:
    wf = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "build", "namespace": NS},
        "spec": {
            "entrypoint": "main",
            "templates": [{"name": "main", "container": {"image": "x"}}],
        },
    }
    created = apply(dyn, wf)
    assert created.metadata.generation == 1
    res = dyn.resources.get(api_version="argoproj.io/v1alpha1", kind="Workflow")
    with pytest.raises(ApiException) as e:
        res.patch(name="build", namespace=NS, body={"spec": {"entrypoint": "other"}})
    body = status_of(e.value)
    assert (e.value.status, body["reason"]) == (415, "UnsupportedMediaType")
    patched = res.patch(
        name="build",
        namespace=NS,
        body={"spec": {"entrypoint": "other"}},
        content_type="application/merge-patch+json",
    )
    assert patched.spec.entrypoint == "other" and patched.metadata.generation == 2


# ---- status subresource -------------------------------------------------------------------------


def test_status_subresource(
    api: client.ApiClient, dyn: dynamic.DynamicClient, fake_kube: FakeKubeAPI
) -> None:
    apps = client.AppsV1Api(api)
    apply(dyn, deployment())
    dep = apps.read_namespaced_deployment("devpi", NS)
    ignored = apps.patch_namespaced_deployment("devpi", NS, {"status": {"replicas": 5}})
    assert ignored.status.replicas is None
    assert ignored.metadata.resource_version == dep.metadata.resource_version
    dep.status = client.V1DeploymentStatus(replicas=5, observed_generation=1)
    dep.spec.replicas = 9  # ignored on the status subresource
    st = apps.replace_namespaced_deployment_status("devpi", NS, dep)
    assert st.status.replicas == 5 and st.spec.replicas == 1
    assert st.metadata.generation == 1
    assert st.metadata.resource_version != dep.metadata.resource_version
    ready = fake_kube.make_deployment_ready(NS, "devpi")
    assert ready["status"]["readyReplicas"] == 1
    assert ready["status"]["observedGeneration"] == 1
    pods = client.CoreV1Api(api).list_namespaced_pod(NS, label_selector="app=devpi")
    assert [p.status.phase for p in pods.items] == ["Running"]
    assert pods.items[0].status.conditions[-1].type == "Ready"
    assert pods.items[0].metadata.owner_references[0].name == "devpi"


def test_pvc_bound(api: client.ApiClient, fake_kube: FakeKubeAPI) -> None:
    v1 = client.CoreV1Api(api)
    v1.create_namespaced_persistent_volume_claim(
        NS,
        {
            "metadata": {"name": "data"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "5Gi"}},
            },
        },
    )
    assert v1.read_namespaced_persistent_volume_claim("data", NS).status.phase == "Pending"
    fake_kube.make_pvc_bound(NS, "data")
    pvc = v1.read_namespaced_persistent_volume_claim("data", NS)
    assert pvc.status.phase == "Bound" and pvc.status.capacity == {"storage": "5Gi"}


# ---- selectors ----------------------------------------------------------------------------------


def test_label_and_field_selectors(api: client.ApiClient, fake_kube: FakeKubeAPI) -> None:
    v1 = client.CoreV1Api(api)
    for name, labels in [("a", {"tier": "web", "env": "prod"}), ("b", {"tier": "db"}), ("c", {})]:
        v1.create_namespaced_config_map(NS, {"metadata": {"name": name, "labels": labels}})

    def names(**kw: Any) -> list[str]:
        return [c.metadata.name for c in v1.list_namespaced_config_map(NS, **kw).items]

    assert names(label_selector="tier=web") == ["a"]
    assert names(label_selector="tier!=web") == ["b", "c"]
    assert names(label_selector="tier in (web,db)") == ["a", "b"]
    assert names(label_selector="tier notin (web)") == ["b", "c"]
    assert names(label_selector="env") == ["a"]
    assert names(label_selector="!env") == ["b", "c"]
    assert names(label_selector="tier,!env") == ["b"]
    assert names(field_selector="metadata.name=b") == ["b"]
    assert names(field_selector="metadata.name!=b,metadata.namespace=devpi") == ["a", "c"]
    with pytest.raises(ApiException) as e:
        names(field_selector="data.x=1")
    assert e.value.status == 400
    fake_kube.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": NS},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
        }
    )
    assert [
        p.metadata.name
        for p in v1.list_pod_for_all_namespaces(field_selector="status.phase=Pending").items
    ] == ["p"]
    assert v1.list_pod_for_all_namespaces(field_selector="status.phase=Running").items == []


# ---- watch --------------------------------------------------------------------------------------


def _pod(name: str, labels: dict | None = None) -> dict:
    return {
        "metadata": {"name": name, "labels": labels or {"app": "w"}},
        "spec": {"containers": [{"name": "c", "image": "i"}]},
    }


def test_watch_replays_only_newer_events_and_ends_at_timeout(api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    v1.create_namespaced_pod(NS, _pod("old"))
    rv = v1.list_namespaced_pod(NS).metadata.resource_version
    v1.create_namespaced_pod(NS, _pod("new"))
    v1.create_namespaced_pod(NS, _pod("other", {"app": "x"}))
    v1.patch_namespaced_pod("new", NS, {"metadata": {"labels": {"k": "v"}}})

    def later() -> None:
        time.sleep(0.3)
        v1.delete_namespaced_pod("new", NS)

    t = threading.Thread(target=later)
    t.start()
    start = time.monotonic()
    seen = [
        (e["type"], e["object"].metadata.name)
        for e in watch.Watch().stream(
            v1.list_namespaced_pod,
            NS,
            label_selector="app=w",
            timeout_seconds=1,
            resource_version=rv,
        )
    ]
    elapsed = time.monotonic() - start
    t.join()
    assert seen == [("ADDED", "new"), ("MODIFIED", "new"), ("DELETED", "new")]
    assert 0.9 <= elapsed < 3


def test_watch_without_resource_version_lists_first(api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    v1.create_namespaced_pod(NS, _pod("one"))
    events = list(watch.Watch().stream(v1.list_namespaced_pod, NS, timeout_seconds=1))
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "one")]


def test_watch_too_old_resource_version_is_410(
    api: client.ApiClient, fake_kube: FakeKubeAPI
) -> None:
    v1 = client.CoreV1Api(api)
    rv = v1.list_namespaced_pod(NS).metadata.resource_version
    v1.create_namespaced_pod(NS, _pod("one"))
    fake_kube.compact()
    with pytest.raises(ApiException) as e:
        list(
            watch.Watch().stream(v1.list_namespaced_pod, NS, timeout_seconds=1, resource_version=rv)
        )
    assert e.value.status == 410 and "Expired" in e.value.reason


def test_stop_closes_open_watch_promptly(tmp_path: Path) -> None:
    fake = FakeKubeAPI(crds=()).start()
    v1 = client.CoreV1Api(fake.api_client())
    done = threading.Event()

    def watcher() -> None:
        # a stream cut at shutdown may end cleanly or mid-chunk (ProtocolError): either way it
        # must end now, not at its 60 s timeout
        try:
            for _ in watch.Watch().stream(v1.list_namespaced_pod, "default", timeout_seconds=60):
                pass
        except Exception:  # the ending is what is measured
            pass
        finally:
            done.set()

    t = threading.Thread(target=watcher, daemon=True)
    t.start()
    time.sleep(0.3)
    start = time.monotonic()
    fake.stop()
    assert done.wait(3)
    assert time.monotonic() - start < 3


# ---- pod logs -----------------------------------------------------------------------------------


def test_pod_log_and_follow(api: client.ApiClient, fake_kube: FakeKubeAPI) -> None:
    v1 = client.CoreV1Api(api)
    v1.create_namespaced_pod(NS, _pod("init"))
    fake_kube.set_pod_log(NS, "init", "line 1\n")
    assert v1.read_namespaced_pod_log("init", NS) == "line 1\n"

    def feed() -> None:
        time.sleep(0.2)
        fake_kube.append_pod_log(NS, "init", "line 2\n")
        time.sleep(0.2)
        fake_kube.end_pod_log(NS, "init")

    t = threading.Thread(target=feed)
    t.start()
    lines = list(watch.Watch().stream(v1.read_namespaced_pod_log, "init", NS))
    t.join()
    assert lines == ["line 1", "line 2"]
    with pytest.raises(ApiException) as e:
        v1.read_namespaced_pod_log("missing", NS)
    assert e.value.status == 404


def test_pod_log_follow_ends_when_pod_deleted(
    api: client.ApiClient, fake_kube: FakeKubeAPI
) -> None:
    v1 = client.CoreV1Api(api)
    v1.create_namespaced_pod(NS, _pod("p"))
    threading.Timer(0.2, lambda: fake_kube.delete("v1", "Pod", "p", NS)).start()
    assert list(watch.Watch().stream(v1.read_namespaced_pod_log, "p", NS)) == []


# ---- auth, RBAC, faults, log --------------------------------------------------------------------


def test_bad_token_is_401(fake_kube: FakeKubeAPI, kubeconfig: Path) -> None:
    api = config.new_client_from_config(config_file=str(kubeconfig))
    assert client.CoreV1Api(api).list_namespace().items
    wrong = kubeconfig.with_name("wrong")
    wrong.write_text(kubeconfig.read_text().replace(fake_kube.token, "wrong"))
    bad = config.new_client_from_config(config_file=str(wrong))
    with pytest.raises(ApiException) as e:
        client.CoreV1Api(bad).list_namespace()
    assert e.value.status == 401 and status_of(e.value)["reason"] == "Unauthorized"


def test_deny_is_403(api: client.ApiClient, fake_kube: FakeKubeAPI) -> None:
    fake_kube.user = "x"
    fake_kube.deny("create", "secrets", NS)
    with pytest.raises(ApiException) as e:
        client.CoreV1Api(api).create_namespaced_secret(NS, {"metadata": {"name": "s"}})
    body = status_of(e.value)
    assert (body["reason"], body["message"]) == (
        "Forbidden",
        (
            'secrets is forbidden: User "x" cannot create resource "secrets" in API group "" '
            'in the namespace "devpi"'
        ),
    )
    client.CoreV1Api(api).create_namespaced_config_map(NS, {"metadata": {"name": "ok"}})


def test_fault_injection_and_request_log(api: client.ApiClient, fake_kube: FakeKubeAPI) -> None:
    v1 = client.CoreV1Api(api)
    fake_kube.fail(
        "GET", r"/configmaps$", status=503, reason="ServiceUnavailable", message="etcd down"
    )
    with pytest.raises(ApiException) as e:
        v1.list_namespaced_config_map(NS)
    assert (e.value.status, status_of(e.value)["message"]) == (503, "etcd down")
    assert v1.list_namespaced_config_map(NS).items == []  # times=1
    fake_kube.delay("GET", r"/configmaps$", 0.3)
    start = time.monotonic()
    v1.list_namespaced_config_map(NS)
    assert time.monotonic() - start >= 0.3
    fake_kube.clear_log()
    v1.create_namespaced_config_map(NS, {"metadata": {"name": "c"}}, field_manager="me")
    v1.read_namespaced_config_map("c", NS)
    [w] = fake_kube.writes()
    assert (w.method, w.path, w.query, w.status) == (
        "POST",
        f"/api/v1/namespaces/{NS}/configmaps",
        {"fieldManager": "me"},
        201,
    )
    assert json.loads(w.body)["metadata"]["name"] == "c"
    assert [r.method for r in fake_kube.requests] == ["POST", "GET"]


# ---- namespace deletion, helpers ----------------------------------------------------------------


def test_namespace_delete_removes_contents(
    api: client.ApiClient, dyn: dynamic.DynamicClient, fake_kube: FakeKubeAPI
) -> None:
    v1 = client.CoreV1Api(api)
    apply(dyn, deployment())
    fake_kube.make_deployment_ready(NS, "devpi")
    ns = v1.delete_namespace(NS)
    assert ns["status"]["phase"] == "Terminating"
    assert fake_kube.get("apps/v1", "Deployment", "devpi", NS) is None
    assert fake_kube.list("v1", "Pod", NS) == []
    with pytest.raises(ApiException) as e:
        v1.read_namespace(NS)
    assert e.value.status == 404


def test_helper_create_is_validated_and_watched(
    api: client.ApiClient, fake_kube: FakeKubeAPI
) -> None:
    sc = fake_kube.create(
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": "fast"},
            "provisioner": "x",
        }
    )
    assert sc["metadata"]["resourceVersion"]
    with pytest.raises(Exception, match="is invalid"):
        fake_kube.create(
            {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "bad"}}
        )  # provisioner is required
    ns = fake_kube.get("v1", "Namespace", NS)
    assert ns is not None and ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": NS}
    deep = copy.deepcopy(ns)
    deep["metadata"]["labels"]["x"] = "y"
    assert fake_kube.get("v1", "Namespace", NS) == ns  # get returns copies


def test_secret_apply_with_string_data_is_idempotent_and_dry_run_writes_nothing(
    dyn: dynamic.DynamicClient, fake_kube: FakeKubeAPI
) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "pw", "namespace": NS},
        "stringData": {"password": "s3cret"},
    }
    dry = apply(dyn, body, dry_run="All")
    assert dry.to_dict()["data"] == {"password": base64.b64encode(b"s3cret").decode()}
    assert fake_kube.get("v1", "Secret", "pw", NS) is None
    first = apply(dyn, body)
    again = apply(dyn, body)
    assert again.metadata.resourceVersion == first.metadata.resourceVersion
    assert again.stringData is None


def test_strategic_merge_merges_env_by_name(dyn: dynamic.DynamicClient) -> None:
    apply(dyn, deployment())
    res = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    patch = {
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "server", "env": [{"name": "B", "value": "2"}]}]}
            }
        }
    }
    patched = res.patch(name="devpi", namespace=NS, body=patch)
    [server] = patched.spec.template.spec.containers
    assert server.image == "devpi:1" and [e.name for e in server.env] == ["B"]
    assert patched.metadata.generation == 2
