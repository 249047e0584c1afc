"""Snapshot tests: fixed terminal size, a fixed clock, no blinking cursor, workers awaited.

Update the baselines with ``python3 -m pytest tests/tui --snapshot-update`` after a change
that is meant to show, and look at the report before committing them.
"""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input

from thinkube_devpi.installer.live.sources import build_snapshot, sources
from thinkube_devpi.tui.messages import ClusterStatus

from .conftest import FIXED_NOW, SIZE, cluster_of, header_of, phases_of, settle, until

NS = "devpi"


def stamp(seconds_ago: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(FIXED_NOW - seconds_ago, dt.UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def pod(name: str, phase: str, ready: bool, *, waiting: str = "", restarts: int = 0,
        ns: str = NS, labels: dict[str, str] | None = None, ago: float = 600) -> dict[str, Any]:
    state: dict[str, Any] = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}",
                     "creationTimestamp": stamp(ago), "labels": labels or {}},
        "spec": {"containers": [{"name": "main"}], "nodeName": "node-1"},
        "status": {
            "phase": phase,
            "podIP": "10.244.0.7",
            "containerStatuses": [
                {"name": "main", "ready": ready, "restartCount": restarts, "state": state}
            ],
        },
    }


def cluster_objects(settings) -> list[dict[str, dict[str, Any]]]:
    """Healthy and failing rows of every kind, as a thinkube cluster mid-install shows them."""
    by_kind: dict[tuple[str, str | None], list[dict[str, Any]]] = {
        ("Pod", NS): [
            pod("ephemeral-redis-7d9c-x2x4z", "Running", True, ago=3600),
            pod("devpi-6f5b-qq8rt", "Running", False, restarts=3, ago=900),  # not ready: fault
            pod("oauth2-proxy-5c4d-9kz7p", "Pending", False, waiting="ImagePullBackOff", ago=120),
            pod("devpi-init-8xk2m", "Succeeded", False, ago=7200),
        ],
        ("Pod", "argo"): [
            pod("devpi-build-x7k2p-kaniko-1", "Running", True, ns="argo", ago=45,
                labels={"workflows.argoproj.io/workflow": "devpi-build-x7k2p"}),
        ],
        ("Deployment", NS): [
            {"metadata": {"name": "ephemeral-redis", "namespace": NS, "uid": "d1",
                          "creationTimestamp": stamp(3600)},
             "spec": {"replicas": 1},
             "status": {"readyReplicas": 1, "updatedReplicas": 1, "availableReplicas": 1}},
            {"metadata": {"name": "oauth2-proxy", "namespace": NS, "uid": "d2",
                          "creationTimestamp": stamp(120)},
             "spec": {"replicas": 1},
             "status": {"conditions": [{"type": "Progressing", "status": "False",
                                        "reason": "ProgressDeadlineExceeded"}]}},
        ],
        ("PersistentVolumeClaim", NS): [
            {"metadata": {"name": "devpi-data-pvc", "namespace": NS, "uid": "p1",
                          "creationTimestamp": stamp(4000)},
             "spec": {"accessModes": ["ReadWriteOnce"], "volumeName": "pvc-1a2b",
                      "storageClassName": "local-path"},
             "status": {"phase": "Bound", "capacity": {"storage": "5Gi"}}},
        ],
        ("Service", NS): [
            {"metadata": {"name": "ephemeral-redis", "namespace": NS, "uid": "s1",
                          "creationTimestamp": stamp(3600)},
             "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.12",
                      "ports": [{"name": "redis", "port": 6379, "protocol": "TCP"}]}},
        ],
        ("HTTPRoute", NS): [
            {"metadata": {"name": "devpi-api", "namespace": NS, "uid": "r1", "generation": 1,
                          "creationTimestamp": stamp(600)},
             "spec": {"hostnames": ["devpi-api.example.com"],
                      "parentRefs": [{"name": "thinkube-gateway", "namespace": "gateway-system",
                                      "sectionName": "https"}]},
             "status": {"parents": [{"parentRef": {"name": "thinkube-gateway",
                                                   "namespace": "gateway-system",
                                                   "sectionName": "https"},
                                     "conditions": [
                                         {"type": "Accepted", "status": "True"},
                                         {"type": "ResolvedRefs", "status": "True"}]}]}},
            {"metadata": {"name": "devpi-dashboard", "namespace": NS, "uid": "r2",
                          "generation": 1, "creationTimestamp": stamp(600)},
             "spec": {"hostnames": ["devpi.example.com"],
                      "parentRefs": [{"name": "thinkube-gateway", "namespace": "gateway-system",
                                      "sectionName": "https"}]},
             "status": {"parents": [{"parentRef": {"name": "thinkube-gateway",
                                                   "namespace": "gateway-system",
                                                   "sectionName": "https"},
                                     "conditions": [
                                         {"type": "Accepted", "status": "True"},
                                         {"type": "ResolvedRefs", "status": "False",
                                          "reason": "BackendNotFound"}]}]}},
        ],
        ("Event", NS): [
            {"metadata": {"name": "e1", "namespace": NS, "uid": "e1",
                          "creationTimestamp": stamp(100)},
             "type": "Warning", "reason": "Failed", "count": 4,
             "lastTimestamp": stamp(30),
             "involvedObject": {"kind": "Pod", "name": "oauth2-proxy-5c4d-9kz7p"},
             "message": 'Failed to pull image "quay.io/oauth2-proxy/oauth2-proxy:v7.15.3"'},
            {"metadata": {"name": "e2", "namespace": NS, "uid": "e2",
                          "creationTimestamp": stamp(3600)},
             "type": "Normal", "reason": "Started", "lastTimestamp": stamp(3500),
             "involvedObject": {"kind": "Pod", "name": "ephemeral-redis-7d9c-x2x4z"},
             "message": "Started container redis"},
        ],
    }
    out = []
    for src in sources(settings):
        out.append({f"uid-{i}": o for i, o in enumerate(by_kind.get((src.kind, src.namespace),
                                                                    []))})
    return out


def quiet(app) -> None:
    for field in app.screen.query(Input):
        field.cursor_blink = False


def test_phases_view(snap_compare, cluster, kubeconfig, make_app):
    app = make_app(kubeconfig=kubeconfig, watch_cluster=False, clock=lambda: FIXED_NOW)

    async def ready(pilot: Pilot[Any]) -> None:
        await until(pilot, lambda: header_of(app).connection == "connected", what="connection")
        await until(pilot, lambda: phases_of(app).plans.get("redis") is not None, what="plans")
        await settle(app, pilot)
        phases_of(app).select("redis")
        await settle(app, pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


def test_cluster_view_healthy_and_failing_rows(snap_compare, cluster, kubeconfig, make_app,
                                                settings):
    app = make_app(kubeconfig=kubeconfig, watch_cluster=False, clock=lambda: FIXED_NOW)
    srcs = sources(settings)
    snapshot = build_snapshot(srcs, cluster_objects(settings), [""] * len(srcs), at=FIXED_NOW)

    async def ready(pilot: Pilot[Any]) -> None:
        await until(pilot, lambda: header_of(app).connection == "connected", what="connection")
        await settle(app, pilot)
        await pilot.press("2")
        app.post_message(ClusterStatus(snapshot))
        await until(pilot, lambda: cluster_of(app).snapshot is snapshot, what="snapshot")
        await settle(app, pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


def test_config_view_with_a_validation_error(snap_compare, make_app, tmp_path):
    note = "No settings file: using the defaults (placeholder domain thinkube.local)."
    app = make_app(plan=True, config_note=note)

    async def ready(pilot: Pilot[Any]) -> None:
        await pilot.press("3")
        await settle(app, pilot)
        quiet(app)
        field = app.screen.query_one("#input-storage_size", Input)
        field.focus()
        field.value = "5 gigs"
        await settle(app, pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


def test_plan_mode(snap_compare, make_app):
    from thinkube_devpi.config import Settings

    app = make_app(plan=True, settings=Settings())

    async def ready(pilot: Pilot[Any]) -> None:
        await until(pilot, lambda: phases_of(app).plans.get("redis") is not None, what="plans")
        await settle(app, pilot)
        phases_of(app).select("redis")
        await settle(app, pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


def test_plan_mode_at_80x24(snap_compare, make_app, tmp_path):
    """The smallest terminal an admin may have: the header folds, the phase list and the plan
    keep their words whole, and the reason for plan mode is read in full."""
    # a fixed path: the reason names it, and the baseline must not change between runs
    app = make_app(kubeconfig="/nonexistent/kubeconfig")

    async def ready(pilot: Pilot[Any]) -> None:
        await until(pilot, lambda: header_of(app).connection == "unreachable", what="plan mode")
        await until(pilot, lambda: phases_of(app).plans.get("redis") is not None, what="plans")
        await settle(app, pilot)
        phases_of(app).select("redis")
        await settle(app, pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=ready)


def test_help_screen_of_the_phases_view(snap_compare, make_app):
    app = make_app(plan=True)

    async def ready(pilot: Pilot[Any]) -> None:
        await settle(app, pilot)
        await pilot.press("question_mark")
        await until(pilot, lambda: app.screen.__class__.__name__ == "HelpScreen", what="help")
        await settle(app, pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)
