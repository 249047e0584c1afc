"""The install's whole life against the real control plane (scripts/cluster.sh).

The same stand-ins as tests/installer/test_lifecycle.py play what a bare control plane lacks
(tests/real_cluster/world.py); everything Kubernetes does is the real API server's and
controllers' work. Requests and writes are counted by the API server's audit log.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from real_cluster.harness import AuditEvent
from real_cluster.world import RealWorld
from thinkube_devpi.installer.events import Event, LogLine, ObjectDeleted, PhaseFinished

pytestmark = pytest.mark.real_cluster


def failures(events: list[Event]) -> list[str]:
    return [
        f"{e.phase}: {e.message} {e.hint}"
        for e in events
        if isinstance(e, PhaseFinished) and not e.ok
    ]


def summary(events: list[AuditEvent]) -> str:
    return ", ".join(f"{e.verb} {e.path}" for e in events[:20])


def test_install_prove_reapply_and_roll_back(real_world: RealWorld) -> None:
    w = real_world
    cluster = w.cluster
    ns = w.settings.namespace
    cluster.clear_log()
    start = time.monotonic()
    ok, events = w.apply()
    seconds = time.monotonic() - start
    assert ok, failures(events)
    install = cluster.requests()
    print(
        f"\nfull install: {len(install)} requests, "
        f"{sum(e.is_write for e in install)} writes, {seconds:.1f} s"
    )
    assert [e for e in install if e.code >= 500] == []

    ok, events = w.apply(["test"], force=True)
    lines = [e.text for e in events if isinstance(e, LogLine)]
    assert ok, "\n".join(lines)

    # converged: nothing of ours moves on the real API server, not one write is sent
    before, builds = w.ours(), w.controllers.builds
    cluster.clear_log()
    start = time.monotonic()
    ok, events = w.apply()
    seconds = time.monotonic() - start
    assert ok, failures(events)
    assert w.ours() == before
    assert w.controllers.builds == builds
    writes = cluster.writes()
    assert writes == [], summary(writes)
    print(f"converged re-apply: {len(cluster.requests())} requests, 0 writes, {seconds:.1f} s")

    # the devpi Deployment ArgoCD applied from the repository rolled out under PodSecurity
    dep = cluster.get("apps/v1", "Deployment", "devpi", ns)
    assert dep is not None and (dep.get("status") or {}).get("availableReplicas") == 1

    # roll back, keeping the package data: only it (and what it needs) stays, each with a reason
    ok, events = w.rollback()
    assert ok, failures(events)
    kept = {
        str(e.ref): e.reason for e in events if isinstance(e, ObjectDeleted) and e.outcome == "kept"
    }
    left = set(w.ours())
    assert left == {
        f"PersistentVolumeClaim {ns}/devpi-data-pvc",
        f"Namespace /{ns}",
        f"Secret {ns}/devpi-root",
        f"Secret {ns}/devpi-server-secret",
    }, left
    for key in left:
        kind, _, rest = key.partition(" ")
        assert kept.get(f"{kind} {rest.lstrip('/')}"), f"{key} kept without a reason"
    assert cluster.get("argoproj.io/v1alpha1", "Application", "devpi", "argocd") is None
    # no pod is left running in the kept namespace (the Deployment's went with the Application)
    assert [
        p["metadata"]["name"]
        for p in cluster.list("v1", "Pod", ns)
        if p["status"]["phase"] == "Running"
    ] == []


def test_forced_reapply_writes_only_no_op_applies(real_world: RealWorld) -> None:
    w = real_world
    ok, events = w.apply()
    assert ok, failures(events)
    before = w.ours()
    w.cluster.clear_log()
    ok, events = w.apply(force=True)
    assert ok, failures(events)
    writes = w.cluster.writes()
    assert writes, "a forced re-apply sends its applies"
    not_applies = [e for e in writes if e.verb != "patch" or "fieldManager=" not in e.uri]
    # a forced re-apply may start a build (a new Workflow), and nothing else that is not an apply
    assert all(e.verb == "create" and e.resource == "workflows" for e in not_applies), summary(
        not_applies
    )
    after = w.ours()
    moved = {
        k: (before.get(k), v)
        for k, v in after.items()
        if before.get(k) != v and not k.startswith("Workflow ")
    }
    assert moved == {}, "server-side applies of unchanged objects moved resourceVersions"


def pods_admitted(w: RealWorld, ns: str) -> dict[str, Any]:
    """For each of our Deployments and Jobs: the pods the real controllers made for it."""
    out: dict[str, Any] = {}
    for dep in w.cluster.list("apps/v1", "Deployment", ns):
        name = dep["metadata"]["name"]
        out[f"Deployment {name}"] = (dep.get("status") or {}).get("availableReplicas")
    for job in w.cluster.list("batch/v1", "Job", ns):
        out[f"Job {job['metadata']['name']}"] = (job.get("status") or {}).get("succeeded")
    return out


def test_pods_of_our_deployments_and_jobs_are_admitted_under_restricted(
    real_world: RealWorld,
) -> None:
    w = real_world
    ns = w.settings.namespace
    ok, events = w.apply()
    assert ok, failures(events)
    labels = w.cluster.get("v1", "Namespace", ns)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    admitted = pods_admitted(w, ns)
    assert {"Deployment devpi", "Deployment oauth2-proxy", "Job devpi-init"} <= set(admitted), (
        admitted
    )
    assert all(admitted.values()), admitted
    # no ReplicaSet or Job was refused a pod by the PodSecurity admission
    refused = [
        f"{e['involvedObject']['kind']} {e['involvedObject']['name']}: {e['message']}"
        for e in w.cluster.list("v1", "Event", ns)
        if e.get("reason") == "FailedCreate"
    ]
    assert refused == []
