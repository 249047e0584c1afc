"""Live cluster status: k9s-like rows, snapshots, and a watcher that stops at once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from fakes.kube_api import FakeKubeAPI
from thinkube_devpi.config import Settings
from thinkube_devpi.installer.kube import Kube
from thinkube_devpi.installer.live.rows import (
    ClusterSnapshot,
    Health,
    application_row,
    deployment_row,
    event_row,
    job_row,
    pod_row,
    pod_status,
    pvc_row,
    workflow_row,
)
from thinkube_devpi.installer.live.sources import build_snapshot, sources
from thinkube_devpi.installer.live.watcher import StatusWatcher
from thinkube_devpi.installer.preflight import preflight

NS = "devpi"


def pod(phase: str, *, ready: bool = True, waiting: str = "", terminated: dict | None = None,
        inits: list | None = None, deleting: bool = False) -> dict:
    state: dict = {"running": {}}
    if waiting:
        state = {"waiting": {"reason": waiting}}
    if terminated is not None:
        state = {"terminated": terminated}
    meta: dict = {"name": "p", "namespace": NS, "uid": "u1"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status: dict = {
        "phase": phase,
        "containerStatuses": [{"name": "c", "ready": ready, "restartCount": 2, "state": state}],
    }
    if inits is not None:
        status["initContainerStatuses"] = inits
    return {"metadata": meta, "spec": {"containers": [{"name": "c"}]}, "status": status}


@pytest.mark.parametrize(
    ("obj", "word", "health"),
    [
        (pod("Running"), "Running", Health.OK),
        (pod("Running", ready=False), "Running", Health.FAULT),  # k9s: not ready is an error
        (pod("Running", ready=False, waiting="CrashLoopBackOff"), "CrashLoopBackOff",
         Health.FAULT),
        (pod("Pending", ready=False, waiting="ContainerCreating"), "ContainerCreating",
         Health.PENDING),
        (pod("Pending", ready=False, waiting="ImagePullBackOff"), "ImagePullBackOff",
         Health.FAULT),
        (pod("Succeeded", ready=False, terminated={"exitCode": 0, "reason": "Completed"}),
         "Completed", Health.COMPLETED),
        (pod("Failed", ready=False, terminated={"exitCode": 1, "reason": "Error"}), "Error",
         Health.FAULT),
        (pod("Running", deleting=True), "Terminating", Health.TERMINATING),
        (pod("Pending", ready=False, inits=[{"state": {"running": {}}}]), "Init:0/1",
         Health.PENDING),
        (pod("Pending", ready=False, inits=[{"state": {"terminated": {"exitCode": 1}}}]),
         "Init:Error", Health.FAULT),
    ],
)
def test_pod_status_reads_like_kubectl(obj, word, health):
    assert pod_status(obj) == (word, health)


def test_pod_row_counts_ready_containers_and_restarts():
    row = pod_row(pod("Running", ready=False))
    assert row.cells[:3] == ("0/1", "Running", "2")
    assert row.health is Health.FAULT and row.health.is_fault


def test_rows_of_the_other_kinds():
    dep = {"metadata": {"name": "d"}, "spec": {"replicas": 2},
           "status": {"readyReplicas": 1, "updatedReplicas": 2, "availableReplicas": 1}}
    assert deployment_row(dep).health is Health.PENDING
    dep["status"]["conditions"] = [{"type": "Progressing", "status": "False",
                                    "reason": "ProgressDeadlineExceeded"}]
    assert (deployment_row(dep).status, deployment_row(dep).health) == (
        "ProgressDeadlineExceeded", Health.FAULT)
    assert pvc_row({"metadata": {"name": "v"}, "status": {"phase": "Bound"}}).health is Health.OK
    assert pvc_row({"metadata": {"name": "v"}, "status": {"phase": "Lost"}}).health is Health.FAULT
    job = {"metadata": {"name": "j"}, "status": {"conditions": [{"type": "Failed",
                                                                 "status": "True"}]}}
    assert job_row(job).health is Health.FAULT
    assert workflow_row({"metadata": {"name": "w"}, "status": {"phase": "Succeeded"}}).health \
        is Health.COMPLETED
    app = {"metadata": {"name": "devpi"},
           "status": {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}}}
    assert application_row(app).health is Health.OK
    app["status"]["health"]["status"] = "Degraded"
    assert application_row(app).health is Health.FAULT
    warning = event_row({"metadata": {"name": "e"}, "type": "Warning", "reason": "BackOff",
                         "involvedObject": {"kind": "Pod", "name": "p"}, "message": "x"})
    assert warning.health is Health.FAULT and "Pod/p" in warning.cells


def test_snapshot_merges_sources_of_one_kind_and_keeps_newest_events_first():
    settings = Settings()
    srcs = sources(settings)
    objects: list[dict] = [{} for _ in srcs]
    errors = [""] * len(srcs)
    pods = [i for i, s in enumerate(srcs) if s.kind == "Pod"]
    objects[pods[0]] = {"a": {"metadata": {"name": "web", "namespace": NS, "uid": "a"}}}
    objects[pods[1]] = {
        "b": {"metadata": {"name": "devpi-build-1", "namespace": "argo", "uid": "b",
                           "labels": {"workflows.argoproj.io/workflow": "devpi-build-1"}}},
        "c": {"metadata": {"name": "other-wf", "namespace": "argo", "uid": "c",
                           "labels": {"workflows.argoproj.io/workflow": "other"}}},
    }
    ev = next(i for i, s in enumerate(srcs) if s.kind == "Event")
    objects[ev] = {
        k: {"metadata": {"name": k, "uid": k}, "lastTimestamp": ts}
        for k, ts in (("old", "2026-01-01T00:00:00Z"), ("new", "2026-01-02T00:00:00Z"))
    }
    wf = next(i for i, s in enumerate(srcs) if s.kind == "Workflow")
    errors[wf] = "The cluster does not serve Workflow"
    snap = build_snapshot(srcs, objects, errors)
    table = snap.table("Pod")
    assert [r.name for r in table.rows] == ["devpi-build-1", "web"]  # other workflows left out
    assert table.title == "Pod(devpi,argo)[2]"
    assert [r.key for r in snap.events.rows] == ["new", "old"]
    assert "does not serve" in snap.table("Workflow").error


@pytest.fixture
def kube(fake_kube: FakeKubeAPI, tmp_path: Path) -> Kube:
    return Kube(fake_kube.api_client(), cache_dir=tmp_path / "cache")


class Collector:
    def __init__(self) -> None:
        self.snaps: list[ClusterSnapshot] = []
        self.changed = threading.Condition()

    def __call__(self, snap: ClusterSnapshot) -> None:
        with self.changed:
            self.snaps.append(snap)
            self.changed.notify_all()

    def wait(self, predicate, timeout: float = 5.0) -> ClusterSnapshot:
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                if self.snaps and predicate(self.snaps[-1]):
                    return self.snaps[-1]
                left = deadline - time.monotonic()
                assert left > 0, "no matching snapshot"
                self.changed.wait(left)


def pvc(name: str = "devpi-data-pvc") -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}}}


def statuses(snap: ClusterSnapshot, kind: str) -> list[tuple[str, str]]:
    return [(r.name, r.status) for r in snap.table(kind).rows]


def test_watcher_follows_changes_and_stops_at_once(fake_kube, kube):
    fake_kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    got = Collector()
    watcher = StatusWatcher(kube, Settings(), got)
    watcher.start()
    try:
        got.wait(lambda s: not any(t.error for t in s.tables))
        fake_kube.create(pvc())
        got.wait(lambda s: statuses(s, "PersistentVolumeClaim") == [("devpi-data-pvc",
                                                                     "Pending")])
        fake_kube.make_pvc_bound(NS, "devpi-data-pvc")
        got.wait(lambda s: statuses(s, "PersistentVolumeClaim") == [("devpi-data-pvc",
                                                                     "Bound")])
        # history compacted (etcd): the watch gets 410 and lists again, missing nothing
        fake_kube.compact()
        fake_kube.delete("v1", "PersistentVolumeClaim", "devpi-data-pvc", NS)
        got.wait(lambda s: statuses(s, "PersistentVolumeClaim") == [])
    finally:
        start = time.monotonic()
        watcher.stop()
        watcher.join(1.0)
    assert [t.name for t in watcher._threads if t.is_alive()] == []
    assert time.monotonic() - start < 1.0


def test_watcher_says_when_a_kind_is_not_served(tmp_path):
    with FakeKubeAPI(crds=()) as fake:
        kube = Kube(fake.api_client(), cache_dir=tmp_path / "cache")
        got = Collector()
        watcher = StatusWatcher(kube, Settings(), got)
        watcher.start()
        try:
            snap = got.wait(lambda s: bool(s.table("Workflow").error))
            assert "Argo" in snap.table("Workflow").error
            assert snap.table("Pod").error == ""
        finally:
            watcher.stop()
            watcher.join(3.0)  # a rediscovery in flight finishes; quitting never waits for it
        assert [t.name for t in watcher._threads if t.is_alive()] == []


def test_preflight_without_a_cluster_says_what_it_could_not_check():
    checks = {c.name: c for c in preflight(None, Settings())}
    assert checks["cluster reachable"].ok is False
    assert checks["ArgoCD CRDs"].ok is None
    assert checks["Keycloak issuer"].ok is None  # the placeholder domain is not looked up


def test_preflight_against_the_cluster(fake_kube, kube):
    checks = {c.name: c for c in preflight(kube, Settings(keycloak_url=None))}
    assert checks["cluster reachable"].ok is True
    assert checks["Argo Workflows CRDs"].ok is True
    assert checks["ArgoCD CRDs"].ok is True
    gateway = checks["Gateway gateway-system/thinkube-gateway"]
    assert gateway.ok is False and "neither a Gateway nor an IngressClass" in gateway.detail
    assert "wildcard TLS Secret" not in checks  # the Gateway holds the certificate
