"""What only a real API server and real controllers can tell about the installer's objects:
strict schema validation and CEL rules, PodSecurity admission, canonical quantities, RBAC as the
authorizer decides it (SubjectAccessReview), and a namespace deletion that really finishes.

Where today's installer is wrong about one of these facts the test is marked xfail(strict=True)
with the issue that fixes it, so it flips to a failure (and must be unmarked) when the fix lands.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.dynamic.exceptions import DynamicApiError

from fakes.gitremote import key_files
from fakes.keycloak import FakeKeycloak
from fakes.tls import shared_pki
from real_cluster.harness import RealCluster
from real_cluster.test_install import failures
from real_cluster.world import NOT_ON_A_BARE_CONTROL_PLANE, RealWorld, kustomize, real_settings
from thinkube_devpi.installer import deployrepo
from thinkube_devpi.installer.events import ObjectRef, PhaseFinished, State
from thinkube_devpi.installer.kube import ADOPTED, MANAGED_BY
from thinkube_devpi.installer.phases import build
from thinkube_devpi.installer.phases.base import Context, Phase, SecretObject, realize
from thinkube_devpi.installer.runner import Runner

pytestmark = pytest.mark.real_cluster

ARGO = "argo"
INSTANCE = "app.kubernetes.io/instance"


@pytest.fixture
def scratch_settings(cluster: RealCluster, tmp_path: Any) -> Iterator[Any]:
    """Settings for a fresh namespace (made here, with the installer's PodSecurity labels)."""
    namespace = f"devpi-{secrets.token_hex(3)}"
    with FakeKeycloak(tls=shared_pki()) as kc:
        settings = real_settings(key_files(tmp_path), kc, namespace)
        ctx = Context(settings, None)
        (ns_obj,) = [
            realize(o)
            for p in build(ctx)
            if p.name == "namespace"
            for o in p.objects()
            if isinstance(o, dict) and o["kind"] == "Namespace"
        ]
        cluster.apply(ns_obj, "test-harness")  # type: ignore[arg-type]
        # the pods' ServiceAccounts, which the ServiceAccount admission looks up
        for obj in rendered(settings):
            if obj["kind"] == "ServiceAccount" and obj["metadata"].get("namespace") == namespace:
                cluster.apply(obj, "test-harness")
        yield settings
        cluster.delete("v1", "Namespace", namespace)


def rendered(settings: Any) -> list[dict[str, Any]]:
    """Every object the installer applies itself (not Secrets: their values are resolved at apply
    time), plus what ArgoCD applies from the deployment repository."""
    ctx = Context(settings, None)
    out: list[dict[str, Any]] = []
    for phase in build(ctx):
        for desired in phase.objects():
            obj = realize(desired)
            if not isinstance(obj, SecretObject) and obj["kind"] != "Namespace":
                out.append(obj)
    out += kustomize(deployrepo.render_files(settings))
    return out


def dry_run(cluster: RealCluster, obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    cluster.resource(obj["apiVersion"], obj["kind"]).server_side_apply(
        body=obj,
        name=meta["name"],
        namespace=meta.get("namespace"),
        field_manager="thinkube-devpi",
        dry_run="All",
        query_params=[("fieldValidation", "Strict")],
    )


def test_every_rendered_object_passes_strict_validation_and_cel(
    cluster: RealCluster, scratch_settings: Any
) -> None:
    """fieldValidation=Strict refuses unknown and duplicate fields; the Gateway API CRDs' CEL
    rules and the Argo/ArgoCD CRD schemas check the custom resources (dry run: nothing stays)."""
    objs = rendered(scratch_settings)
    kinds = {o["kind"] for o in objs}
    assert {"HTTPRoute", "WorkflowTemplate", "Application", "Deployment", "NetworkPolicy"} <= kinds
    refused = []
    for obj in objs:
        try:
            dry_run(cluster, obj)
        except DynamicApiError as exc:
            refused.append(f"{obj['kind']} {obj['metadata']['name']}: {exc.status} {exc.summary()}")
    assert refused == []


def pod_templates(objs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for obj in objs:
        spec = obj.get("spec") or {}
        if obj["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
            yield f"{obj['kind']} {obj['metadata']['name']}", spec["template"]["spec"]


def test_every_pod_template_in_our_namespace_is_admitted_under_restricted(
    cluster: RealCluster, scratch_settings: Any
) -> None:
    """The PodSecurity admission of the real API server, asked with a dry-run Pod per template."""
    ns = scratch_settings.namespace
    objs = [o for o in rendered(scratch_settings) if o["metadata"].get("namespace") == ns]
    templates = dict(pod_templates(objs))
    assert {"Deployment devpi", "Deployment oauth2-proxy", "Job devpi-init"} <= set(templates)
    refused = []
    for what, spec in templates.items():
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "probe", "namespace": ns},
            "spec": spec,
        }
        try:
            cluster.resource("v1", "Pod").create(body=pod, namespace=ns, dry_run="All")
        except DynamicApiError as exc:
            refused.append(f"{what}: {exc.summary()}")
    assert refused == []


def can(
    cluster: RealCluster,
    sa: str,
    verb: str,
    resource: str,
    group: str = "argoproj.io",
    name: str = "",
) -> bool:
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": f"system:serviceaccount:{ARGO}:{sa}",
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{ARGO}",
                "system:authenticated",
            ],
            "resourceAttributes": {
                "namespace": ARGO,
                "verb": verb,
                "group": group,
                "resource": resource,
                **({"name": name} if name else {}),
            },
        },
    }
    result = cluster.resource("authorization.k8s.io/v1", "SubjectAccessReview").create(body=review)
    return bool(result.to_dict()["status"]["allowed"])


def executor_and_step_accounts(spec: dict[str, Any]) -> tuple[str, list[str]]:
    """(the account Argo's init/wait containers call the API with, the accounts whose pods run
    the steps), as Argo's controller decides them (DESIGN.md section 6)."""
    pod_sa = spec.get("serviceAccountName", "default")
    executor = (spec.get("executor") or {}).get("serviceAccountName") or pod_sa
    steps = {
        t.get("serviceAccountName") or pod_sa
        for t in spec.get("templates", [])
        if "container" in t or "script" in t
    }
    return executor, sorted(steps)


@pytest.fixture
def installed(real_world: RealWorld) -> RealWorld:
    ok, events = real_world.apply()
    assert ok, failures(events)
    return real_world


def test_build_accounts_have_exactly_the_rights_argos_executor_needs(installed: RealWorld) -> None:
    """Checked on the live objects: the installer's Workflow (a build ran during the install), the
    CronWorkflow's workflowSpec, each merged over the WorkflowTemplate as Argo merges them."""
    cluster = installed.cluster
    template = cluster.get("argoproj.io/v1alpha1", "WorkflowTemplate", "devpi-build", ARGO)
    crons = cluster.list("argoproj.io/v1alpha1", "CronWorkflow", ARGO)
    workflows = cluster.list("argoproj.io/v1alpha1", "Workflow", ARGO)
    assert template is not None and crons and workflows
    specs = {f"Workflow {w['metadata']['name']}": w["spec"] for w in workflows}
    specs |= {f"CronWorkflow {c['metadata']['name']}": c["spec"]["workflowSpec"] for c in crons}
    for name, own in specs.items():
        spec = {**template["spec"], **{k: v for k, v in own.items() if k != "workflowTemplateRef"}}
        executor, steps = executor_and_step_accounts(spec)
        # the executor reports outputs through WorkflowTaskResults ...
        assert can(cluster, executor, "create", "workflowtaskresults"), (name, executor)
        assert can(cluster, executor, "patch", "workflowtaskresults"), (name, executor)
        # ... and its containers get a token: with the pod's automount off, Argo mounts the
        # executor account's token Secret, which the real token controller has filled in
        if spec.get("automountServiceAccountToken") is False:
            assert (spec.get("executor") or {}).get("serviceAccountName"), name
            tokens = [
                t
                for t in cluster.list("v1", "Secret", ARGO)
                if t["type"] == "kubernetes.io/service-account-token"
                and t["metadata"].get("annotations", {}).get("kubernetes.io/service-account.name")
                == executor
            ]
            assert tokens and all((t.get("data") or {}).get("token") for t in tokens), (
                name,
                executor,
            )
        else:
            sa = cluster.get("v1", "ServiceAccount", executor, ARGO) or {}
            assert sa.get("automountServiceAccountToken") is not False, (name, executor)
        # whatever runs the repository's code can neither start Workflows nor read Secrets
        for sa_name in steps:
            for verb, resource, group in (
                ("create", "workflows", "argoproj.io"),
                ("create", "cronworkflows", "argoproj.io"),
                ("create", "workflowtaskresults", "argoproj.io"),
                ("get", "secrets", ""),
                ("list", "secrets", ""),
                ("create", "pods", ""),
            ):
                assert not can(cluster, sa_name, verb, resource, group), (
                    name,
                    sa_name,
                    verb,
                    resource,
                )
    # the executor account itself may do nothing else
    for sa_name in {
        executor_and_step_accounts({**template["spec"], **s})[0] for s in specs.values()
    }:
        assert not can(cluster, sa_name, "create", "workflows"), sa_name
        assert not can(cluster, sa_name, "get", "secrets", ""), sa_name


def test_no_account_of_an_earlier_release_is_left(installed: RealWorld) -> None:
    """The monitor account of earlier releases could create Workflows: it is gone."""
    cluster = installed.cluster
    assert cluster.get("v1", "ServiceAccount", "devpi-repo-monitor", ARGO) is None
    assert not can(cluster, "devpi-repo-monitor", "create", "workflows")


@pytest.mark.parametrize("real_world", [{"storage_size": "5120Mi"}], indirect=True)
def test_quantities_come_back_canonical_and_status_stays_healthy(real_world: RealWorld) -> None:
    w = real_world
    ok, events = w.apply()
    assert ok, failures(events)
    pvc = w.cluster.get("v1", "PersistentVolumeClaim", "devpi-data-pvc", w.settings.namespace)
    assert pvc["spec"]["resources"]["requests"]["storage"] == "5Gi"  # the server's form of 5120Mi
    states = {
        p.name: s.state
        for p, s in Runner(w.context()).status()
        if isinstance(p, Phase) and p.name not in NOT_ON_A_BARE_CONTROL_PLANE
    }
    assert {n: s for n, s in states.items() if s is not State.HEALTHY} == {}
    w.cluster.clear_log()
    ok, events = w.apply()
    assert ok, failures(events)
    assert w.cluster.writes() == []


def test_rollback_with_package_data_waits_until_the_namespace_is_gone(
    real_world: RealWorld,
) -> None:
    w = real_world
    ns = w.settings.namespace
    ok, events = w.apply()
    assert ok, failures(events)
    ok, events = w.rollback(delete_package_data=ns)
    assert ok, failures(events)
    # the namespace controller has finished: the namespace is gone, not Terminating
    assert w.kube.get(ObjectRef("v1", "Namespace", ns)) is None
    assert w.cluster.list("v1", "PersistentVolume") == [] or all(
        (pv["spec"].get("claimRef") or {}).get("namespace") != ns
        for pv in w.cluster.list("v1", "PersistentVolume")
    )


def test_what_someone_else_made_is_taken_over_only_when_asked(real_world: RealWorld) -> None:
    """The real API server on objects and fields made by someone else: the namespace an admin
    made by hand is refused until adopted, and a field another manager took with
    `kubectl apply --server-side --force-conflicts` is a 409 FieldManagerConflict that names it,
    until the admin asks to take it back. Each failure carries the run option that fixes it,
    which the TUI offers as a tick box."""
    w = real_world
    ns = w.settings.namespace
    w.cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    def run(wanted: list[str], **options: Any) -> tuple[bool, PhaseFinished]:
        events: list[Any] = []
        ok = Runner(w.context(**options), emit=events.append).apply(wanted)
        return ok, [e for e in events if isinstance(e, PhaseFinished)][-1]

    ok, finished = run(["namespace"])
    assert not ok and finished.setting == "adopt" and "--adopt" in finished.hint
    labels = w.cluster.get("v1", "Namespace", ns)["metadata"].get("labels") or {}
    assert MANAGED_BY not in labels and ADOPTED not in labels

    ok, finished = run(["namespace", "storage", "redis"], adopt=True)
    assert ok, finished
    assert w.cluster.get("v1", "Namespace", ns)["metadata"]["labels"][ADOPTED] == "true"

    def selector() -> str:
        service = w.cluster.get("v1", "Service", "ephemeral-redis", ns)
        return str(service["spec"]["selector"][INSTANCE])

    w.cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "ephemeral-redis", "namespace": ns},
            "spec": {"selector": {INSTANCE: "other"}},
        },
        "kubectl",
    )
    ok, finished = run(["redis"])
    assert not ok and finished.setting == "force_conflicts", finished
    assert "HTTP 409" in finished.message and "kubectl" in finished.message, finished.message
    assert selector() == "other"

    ok, finished = run(["redis"], force_conflicts=True)
    assert ok, finished
    assert selector() == "devpi"
