"""Phases 10-30 against the fake API server, through the real kubernetes client."""

from __future__ import annotations

import base64
import json
import threading

import pytest

from fakes.kube_api import FakeKubeAPI
from thinkube_devpi.installer.events import (
    Event,
    ObjectApplied,
    ObjectDeleted,
    ObjectRef,
    PhaseFinished,
    PhaseSkipped,
    State,
)
from thinkube_devpi.installer.kube import Kube
from thinkube_devpi.installer.phases.base import Context, secret_data_version
from thinkube_devpi.installer.runner import Runner

CORE = ["namespace", "storage", "redis"]


def run(
    ctx: Context, action: str, phases: list[str] | None = None, **kw: object
) -> tuple[bool, list[Event]]:
    events: list[Event] = []
    runner = Runner(ctx, emit=events.append)
    ok = getattr(runner, action)(phases or CORE, **kw)
    return ok, events


def versions(fake: FakeKubeAPI) -> dict[str, tuple[str, int]]:
    out = {}
    for api_version, kind in [
        ("v1", "Namespace"),
        ("v1", "ServiceAccount"),
        ("v1", "Secret"),
        ("v1", "Service"),
        ("v1", "PersistentVolumeClaim"),
        ("apps/v1", "Deployment"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
        ("rbac.authorization.k8s.io/v1", "Role"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ]:
        for obj in fake.list(api_version, kind):
            m = obj["metadata"]
            out[f"{kind} {m.get('namespace')}/{m['name']}"] = (
                m["resourceVersion"],
                m.get("generation", 0),
            )
    return out


def test_plan_lists_every_object_before_anything_exists(
    ctx: Context, fake_kube: FakeKubeAPI
) -> None:
    plans = Runner(ctx).plan(CORE)
    refs = {str(i.ref): i.action for p in plans for i in p.items}
    assert refs["Namespace devpi"] == "create"
    assert refs["PersistentVolumeClaim devpi/devpi-data-pvc"] == "create"
    assert refs["ServiceAccount argo/kaniko-builder"] == "create"
    assert refs["Deployment devpi/ephemeral-redis"] == "create"
    redis_secret = next(
        i for p in plans for i in p.items if i.ref.kind == "Secret" and i.ref.namespace == "devpi"
    )
    assert redis_secret.secret_keys == {
        "password": "generated",
        "redis.conf": "derived from password",
    }
    assert "data" not in redis_secret.manifest
    assert fake_kube.writes() == []


def test_apply_creates_objects_and_reports_healthy(
    ctx: Context, fake_kube: FakeKubeAPI, controllers: object
) -> None:
    ok, events = run(ctx, "apply")
    assert ok, [e for e in events if isinstance(e, PhaseFinished)]
    created = {
        str(e.ref) for e in events if isinstance(e, ObjectApplied) and e.outcome == "created"
    }
    assert {
        "Namespace devpi",
        "PersistentVolumeClaim devpi/devpi-data-pvc",
        "Deployment devpi/ephemeral-redis",
        "Secret devpi/ephemeral-redis-auth",
        "Role argo/devpi-build-executor",
    } <= created
    ns = fake_kube.get("v1", "Namespace", "devpi")
    assert ns["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "thinkube-devpi"
    assert ns["metadata"]["labels"]["app.kubernetes.io/part-of"] == "thinkube-devpi"
    statuses = {p.name: s for p, s in Runner(ctx).status(CORE)}
    assert all(s.state is State.HEALTHY for s in statuses.values()), statuses
    assert statuses["storage"].reason.startswith("Bound")


def test_second_apply_moves_no_resource_version(
    ctx: Context, fake_kube: FakeKubeAPI, controllers: object
) -> None:
    assert run(ctx, "apply")[0]
    before = versions(fake_kube)
    fake_kube.clear_log()
    ok, events = run(ctx, "apply")
    assert ok
    assert [e.phase for e in events if isinstance(e, PhaseSkipped)] == CORE
    assert versions(fake_kube) == before
    assert fake_kube.writes() == []
    # forced: every object is applied again, and still nothing changes
    ok, events = run(ctx, "apply", force=True)
    assert ok
    outcomes = {e.outcome for e in events if isinstance(e, ObjectApplied)}
    assert outcomes == {"unchanged"}
    assert versions(fake_kube) == before


def test_redis_password_is_generated_once_and_kept(
    ctx: Context, fake_kube: FakeKubeAPI, controllers: object
) -> None:
    assert run(ctx, "apply", ["redis"] if False else None)[0]
    secret = fake_kube.get("v1", "Secret", "ephemeral-redis-auth", "devpi")
    password = base64.b64decode(secret["data"]["password"]).decode()
    assert len(password) >= 32
    conf = base64.b64decode(secret["data"]["redis.conf"]).decode()
    assert f"requirepass {password}" in conf
    assert run(ctx, "apply", force=True)[0]
    again = fake_kube.get("v1", "Secret", "ephemeral-redis-auth", "devpi")
    assert again["data"] == secret["data"]


def test_redis_password_reaches_redis_only_through_files_and_env(
    ctx: Context, fake_kube: FakeKubeAPI, controllers: object
) -> None:
    assert run(ctx, "apply")[0]
    dep = fake_kube.get("apps/v1", "Deployment", "ephemeral-redis", "devpi")
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["command"] == ["redis-server", "/etc/redis/redis.conf"]
    assert "args" not in c
    env = {e["name"]: e for e in c["env"]}
    assert env["REDISCLI_AUTH"]["valueFrom"]["secretKeyRef"] == {
        "name": "ephemeral-redis-auth",
        "key": "password",
    }
    assert all("$(" not in part for part in c["command"] + c["readinessProbe"]["exec"]["command"])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["resources"]["requests"] and c["resources"]["limits"]
    assert ":latest" not in c["image"] and ":" in c["image"].rsplit("/", 1)[-1]
    secret = fake_kube.get("v1", "Secret", "ephemeral-redis-auth", "devpi")
    annotation = dep["spec"]["template"]["metadata"]["annotations"]["thinkube-devpi/secret-version"]
    assert annotation == secret_data_version(secret)
    assert annotation not in json.dumps(secret["data"])  # a digest, not a copy


def test_a_label_on_the_redis_secret_does_not_restart_redis(
    ctx: Context, fake_kube: FakeKubeAPI, controllers: object
) -> None:
    """Only the Secret's data rolls the pods: a label (from a backup tool, say) moves the
    resourceVersion and must not drop every dashboard session."""
    assert run(ctx, "apply")[0]
    names = ("ephemeral-redis",)
    gens = {n: fake_kube.get("apps/v1", "Deployment", n, "devpi")["metadata"]["generation"] for n in names}
    ref = ObjectRef("v1", "Secret", "ephemeral-redis-auth", "devpi")
    rv = fake_kube.get("v1", "Secret", ref.name, "devpi")["metadata"]["resourceVersion"]
    ctx.require_kube().merge_patch(
        ref, {"metadata": {"labels": {"backup.example.com/included": "true"}}}
    )
    assert fake_kube.get("v1", "Secret", ref.name, "devpi")["metadata"]["resourceVersion"] != rv
    assert run(ctx, "apply", ["redis"], force=True)[0]
    assert {
        n: fake_kube.get("apps/v1", "Deployment", n, "devpi")["metadata"]["generation"] for n in names
    } == gens


def test_rotated_redis_secret_rolls_the_pods(
    ctx: Context, fake_kube: FakeKubeAPI, controllers: object
) -> None:
    assert run(ctx, "apply")[0]
    gen = fake_kube.get("apps/v1", "Deployment", "ephemeral-redis", "devpi")["metadata"][
        "generation"
    ]
    fake_kube.delete("v1", "Secret", "ephemeral-redis-auth", "devpi")
    assert run(ctx, "apply", ["redis"])[0]
    dep = fake_kube.get("apps/v1", "Deployment", "ephemeral-redis", "devpi")
    assert dep["metadata"]["generation"] > gen


def test_rollback_keeps_pvc_and_its_namespace(
    ctx: Context, fake_kube: FakeKubeAPI, controllers: object
) -> None:
    assert run(ctx, "apply")[0]
    ok, events = run(ctx, "rollback")
    assert ok
    kept = {
        str(e.ref): e.reason for e in events if isinstance(e, ObjectDeleted) and e.outcome == "kept"
    }
    assert "PersistentVolumeClaim devpi/devpi-data-pvc" in kept
    # the reason is shown by the TUI as well: it names no CLI flag
    reason = kept["PersistentVolumeClaim devpi/devpi-data-pvc"]
    assert "package data is kept" in reason and "--" not in reason
    assert "devpi-data-pvc" in kept["Namespace devpi"]
    assert fake_kube.get("v1", "PersistentVolumeClaim", "devpi-data-pvc", "devpi") is not None
    assert fake_kube.get("apps/v1", "Deployment", "ephemeral-redis", "devpi") is None
    assert fake_kube.get("v1", "ServiceAccount", "kaniko-builder", "argo") is None


def test_rollback_with_delete_package_data_removes_everything(
    settings, kube: Kube, fake_kube: FakeKubeAPI, controllers: object
) -> None:  # type: ignore[no-untyped-def]
    assert run(Context(settings, kube, wait_timeout=10), "apply")[0]
    ok, _ = run(Context(settings, kube, delete_package_data="devpi"), "rollback")
    assert ok
    assert fake_kube.get("v1", "PersistentVolumeClaim", "devpi-data-pvc", "devpi") is None
    assert fake_kube.get("v1", "Namespace", "devpi") is None


def test_unlabelled_namespace_is_refused_without_adopt_and_kept_after_adopt(
    settings, kube: Kube, fake_kube: FakeKubeAPI, controllers: object
) -> None:  # type: ignore[no-untyped-def]
    fake_kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "devpi"}})
    ok, events = run(Context(settings, kube, wait_timeout=10), "apply", ["namespace"])
    assert not ok
    failed = next(e for e in events if isinstance(e, PhaseFinished))
    assert "Namespace devpi" in failed.message and "not made by thinkube-devpi" in failed.message
    assert "--adopt" in failed.hint
    assert failed.setting == "adopt"  # what fixes it, for a face that words it its own way
    assert "app.kubernetes.io/managed-by" not in (
        fake_kube.get("v1", "Namespace", "devpi")["metadata"].get("labels") or {}
    )

    ok, events = run(Context(settings, kube, adopt=True, wait_timeout=10), "apply", ["namespace"])
    assert ok
    assert any(isinstance(e, ObjectApplied) and e.outcome == "adopted" for e in events)
    labels = fake_kube.get("v1", "Namespace", "devpi")["metadata"]["labels"]
    assert labels["thinkube-devpi/adopted"] == "true"

    ok, events = run(Context(settings, kube), "rollback", ["namespace"])
    assert ok
    assert fake_kube.get("v1", "Namespace", "devpi") is not None
    assert fake_kube.get("v1", "ServiceAccount", "kaniko-builder", "argo") is None


def test_conflict_with_another_field_manager_is_reported_not_overridden(
    settings, kube: Kube, fake_kube: FakeKubeAPI, controllers: object
) -> None:  # type: ignore[no-untyped-def]
    assert run(Context(settings, kube, wait_timeout=10), "apply")[0]
    # someone scales redis by hand with their own apply
    fake_kube_client = kube.resource("apps/v1", "Deployment")
    fake_kube_client.server_side_apply(
        body={
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "ephemeral-redis", "namespace": "devpi"},
            "spec": {
                "replicas": 2,
                "selector": {
                    "matchLabels": {
                        "app.kubernetes.io/name": "ephemeral-redis",
                        "app.kubernetes.io/instance": "devpi",
                    }
                },
                "template": {
                    "metadata": {
                        "labels": {
                            "app.kubernetes.io/name": "ephemeral-redis",
                            "app.kubernetes.io/instance": "devpi",
                        }
                    },
                    "spec": {
                        "containers": [
                            {"name": "redis", "image": "docker.io/library/redis:7.4.2-bookworm"}
                        ]
                    },
                },
            },
        },
        name="ephemeral-redis",
        namespace="devpi",
        field_manager="kubectl",
        force_conflicts=True,
    )
    ok, events = run(Context(settings, kube, wait_timeout=10), "apply", ["redis"], force=True)
    assert not ok
    failed = next(e for e in events if isinstance(e, PhaseFinished))
    assert (
        "HTTP 409" in failed.message
        and ".spec.replicas" in failed.message
        and "kubectl" in failed.message
    )
    assert "--force-conflicts" in failed.hint
    assert failed.setting == "force_conflicts"  # the TUI offers it as a tick box
    assert (
        fake_kube.get("apps/v1", "Deployment", "ephemeral-redis", "devpi")["spec"]["replicas"] == 2
    )

    ok, _ = run(
        Context(settings, kube, force_conflicts=True, wait_timeout=10),
        "apply",
        ["redis"],
        force=True,
    )
    assert ok
    assert (
        fake_kube.get("apps/v1", "Deployment", "ephemeral-redis", "devpi")["spec"]["replicas"] == 1
    )


def test_wait_that_times_out_says_what_it_waited_for(
    settings, kube: Kube, fake_kube: FakeKubeAPI, controllers
) -> None:  # type: ignore[no-untyped-def]
    controllers.enabled = False
    ok, events = run(Context(settings, kube, wait_timeout=1.5), "apply", ["namespace", "storage"])
    assert not ok
    failed = next(e for e in events if isinstance(e, PhaseFinished) and not e.ok)
    assert failed.phase == "storage"
    assert (
        "Timed out after 1.5s waiting for PersistentVolumeClaim devpi/devpi-data-pvc to be Bound"
        in failed.message
    )
    # the status is read from the cluster: progressing, not healthy
    status = dict((p.name, s) for p, s in Runner(Context(settings, kube)).status(["storage"]))
    assert status["storage"].state is State.PROGRESSING


def test_wait_for_first_consumer_is_healthy_and_said_so(
    settings, kube: Kube, fake_kube: FakeKubeAPI, controllers
) -> None:  # type: ignore[no-untyped-def]
    controllers.enabled = False
    fake_kube.create(
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": "local",
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": "rancher.io/local-path",
            "volumeBindingMode": "WaitForFirstConsumer",
        }
    )
    ok, _events = run(Context(settings, kube, wait_timeout=5), "apply", ["namespace", "storage"])
    assert ok
    status = dict((p.name, s) for p, s in Runner(Context(settings, kube)).status(["storage"]))
    assert status["storage"].state is State.HEALTHY
    assert "WaitForFirstConsumer" in status["storage"].reason


def test_shrinking_the_pvc_fails_before_anything_is_written(
    settings, kube: Kube, fake_kube: FakeKubeAPI, controllers
) -> None:  # type: ignore[no-untyped-def]
    assert run(Context(settings, kube, wait_timeout=10), "apply", ["namespace", "storage"])[0]
    settings.storage_size = "1Gi"
    fake_kube.clear_log()
    ok, events = run(Context(settings, kube), "apply", ["storage"], force=True)
    assert not ok
    failed = next(e for e in events if isinstance(e, PhaseFinished))
    assert "'1Gi' would shrink" in failed.message and "5Gi" in failed.message
    assert fake_kube.writes() == []


def test_wait_is_cancelled_at_once(
    settings, kube: Kube, fake_kube: FakeKubeAPI, controllers
) -> None:  # type: ignore[no-untyped-def]
    import time

    controllers.enabled = False
    ctx = Context(settings, kube, wait_timeout=60)
    threading.Timer(0.5, ctx.cancel.set).start()
    start = time.monotonic()
    ok, events = run(ctx, "apply", ["namespace", "storage"])
    assert not ok
    assert time.monotonic() - start < 3
    failed = next(e for e in events if isinstance(e, PhaseFinished) and not e.ok)
    assert "Cancelled" in failed.message


@pytest.mark.parametrize("status,expect", [(403, "RBAC"), (401, "credentials"), (500, "try again")])
def test_api_errors_name_object_status_and_fix(
    settings, kube: Kube, fake_kube: FakeKubeAPI, status: int, expect: str
) -> None:  # type: ignore[no-untyped-def]
    fake_kube.fail(
        "PATCH",
        r"/api/v1/namespaces/devpi$",
        status=status,
        reason={403: "Forbidden", 401: "Unauthorized", 500: "InternalError"}[status],
        message="denied by test",
        times=5,
    )
    ok, events = run(Context(settings, kube), "apply", ["namespace"])
    assert not ok
    failed = next(e for e in events if isinstance(e, PhaseFinished))
    assert "Namespace devpi" in failed.message and f"HTTP {status}" in failed.message
    assert expect in failed.hint


def test_missing_argo_namespace_is_named_before_anything_is_written(
    settings, kube: Kube, fake_kube: FakeKubeAPI
) -> None:  # type: ignore[no-untyped-def]
    fake_kube.delete("v1", "Namespace", "argo")
    fake_kube.clear_log()
    ok, events = run(Context(settings, kube), "apply", ["namespace"])
    assert not ok
    failed = next(e for e in events if isinstance(e, PhaseFinished))
    assert "argo_namespace: namespace 'argo' does not exist" in failed.message
    assert "Argo Workflows" in failed.hint
    assert fake_kube.writes() == []
