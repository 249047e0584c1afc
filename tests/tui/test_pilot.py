"""The admin's stories, driven with Textual's Pilot against the fake Kubernetes API server."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from textual.widgets import Button, Input

from fakes.http import free_port
from fakes.kube_api import FakeKubeAPI
from thinkube_devpi.config import Settings
from thinkube_devpi.installer.events import State
from thinkube_devpi.installer.kube import Kube
from thinkube_devpi.installer.phases.base import Context, Phase
from thinkube_devpi.installer.runner import Runner
from thinkube_devpi.tui.messages import (
    ClusterStatus,
    Connected,
    PhaseStatusRead,
    RollbackPreviewRead,
    Unreachable,
)
from thinkube_devpi.tui.screens.confirm import ConfirmRollback
from thinkube_devpi.tui.widgets.cluster import StatusTable, table_id

from .conftest import SIZE, Seen, cluster_of, header_of, log_of, phases_of, settle, until

NS = "devpi"
RETRY = ("t", "Retry")  # as the header hints it: shown only when it can run
RUN_ALL = ("a", "Run all")


def apply_directly(fake: FakeKubeAPI, settings: Settings, tmp_path: Path, *phases: str) -> None:
    """What an earlier run left behind: phases applied with the installer, no TUI.

    A helper thread plays the storage controller, binding the PVC once it exists.
    """
    kube = Kube(fake.api_client(), cache_dir=tmp_path / "direct-cache")
    done = threading.Event()

    def bind() -> None:
        while not done.is_set():
            if fake.get("v1", "PersistentVolumeClaim", "devpi-data-pvc", NS) is not None:
                fake.make_pvc_bound(NS, "devpi-data-pvc")
                return
            done.wait(0.02)

    helper = threading.Thread(target=bind, daemon=True)
    if "storage" in phases:
        helper.start()
    try:
        assert Runner(Context(settings, kube=kube, wait_timeout=10)).apply(list(phases))
    finally:
        done.set()


async def answer_yes(pilot, app) -> None:
    """A run asks first (what each phase creates or changes): answer y."""
    await until(pilot, lambda: app.screen.__class__.__name__ == "ConfirmRun", what="the question")
    await pilot.press("y")
    await until(pilot, lambda: app.screen.__class__.__name__ != "ConfirmRun", what="the answer")


def state_of(app, name: str) -> State | None:
    status = phases_of(app).statuses.get(name)
    return status.state if status else None


def rows(app, kind: str) -> list[tuple[str, str]]:
    """(name, status) of every row the cluster view shows for ``kind``."""
    snap = cluster_of(app).snapshot
    table = app.screen.query_one(f"#{table_id(kind)}", StatusTable)
    if snap is None:
        return []
    shown = {str(k.value) for k in table.rows}
    return [(r.name, r.status) for r in snap.table(kind).rows if r.key in shown]


async def test_phase_list_reflects_the_cluster(cluster, kubeconfig, make_app, settings, tmp_path):
    apply_directly(cluster, settings, tmp_path, "namespace")
    app = make_app(kubeconfig=kubeconfig, watch_cluster=False)
    seen = Seen()
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await until(pilot, lambda: state_of(app, "redis") is not None, what="phase states")
        await settle(app, pilot)
        # what the status worker read from the cluster, as it told the phases view
        read = {m.phase: m.status.state for m in seen.of(PhaseStatusRead)}
        assert read["namespace"] is State.HEALTHY and read["storage"] is State.MISSING
        assert [m.version for m in seen.of(Connected)] != []
        assert header_of(app).connection == "connected"
        assert header_of(app).context == "fake"
        assert state_of(app, "namespace") is State.HEALTHY
        assert state_of(app, "storage") is State.MISSING
        assert state_of(app, "redis") is State.MISSING
        assert state_of(app, "keycloak") is State.MISSING
        # the plan of the selected phase compares with the live objects
        phases_of(app).select("storage")
        await pilot.pause()
        plan = phases_of(app).plans["storage"]
        assert [(i.action, str(i.ref)) for i in plan.items] == [
            ("create", f"PersistentVolumeClaim {NS}/devpi-data-pvc")
        ]
        assert phases_of(app).plans["namespace"].items[0].action == "unchanged"


async def test_running_phases_10_to_30_shows_objects_appearing(
    cluster, kubeconfig, make_app, monkeypatch
):
    # the checks before the first write would stop "run all" at once for want of a deployment
    # repository (the next test shows that): here the run goes phase by phase, as it did
    monkeypatch.setattr(Phase, "precheck", lambda self: None)
    app = make_app(kubeconfig=kubeconfig)
    seen = Seen()
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await until(pilot, lambda: seen.of(Connected), what="connection")
        app.state.ctx.wait_timeout = 20
        await until(pilot, lambda: seen.of(ClusterStatus), what="first snapshot")
        await pilot.press("a")  # run all remaining
        await answer_yes(pilot, app)
        await until(pilot, lambda: seen.started(), what="the run to start")
        assert seen.started()[0] == "namespace"

        # the test plays the controllers, the cluster view shows what the API shows
        await pilot.press("2")
        await until(
            pilot,
            lambda: ("devpi-data-pvc", "Pending") in rows(app, "PersistentVolumeClaim"),
            what="the PVC to appear, Pending",
        )
        cluster.make_pvc_bound(NS, "devpi-data-pvc")
        await until(
            pilot,
            lambda: ("devpi-data-pvc", "Bound") in rows(app, "PersistentVolumeClaim"),
            what="the PVC to show Bound",
        )
        await until(
            pilot,
            lambda: cluster.get("apps/v1", "Deployment", "ephemeral-redis", NS) is not None,
            what="the redis Deployment",
        )
        await until(
            pilot,
            lambda: any(n == "ephemeral-redis" for n, _ in rows(app, "Deployment")),
            what="the Deployment row",
        )
        cluster.make_deployment_ready(NS, "ephemeral-redis")
        await until(
            pilot,
            lambda: any(
                n.startswith("ephemeral-redis-") and s == "Running" for n, s in rows(app, "Pod")
            ),
            what="the redis pod, Running",
        )
        await until(pilot, lambda: seen.runs_ended(), timeout=20, what="the run to finish")
        await settle(app, pilot)
        for name in ("namespace", "storage", "redis"):
            assert state_of(app, name) is State.HEALTHY, name
        # the run goes on to Keycloak and stops there, saying what it needs
        assert seen.started()[:4] == ["namespace", "storage", "redis", "keycloak"]
        assert seen.failed() == {"keycloak"}
        assert [(r.action, r.ok) for r in seen.runs_ended()] == [("apply", False)]
        keycloak_log = log_of(app, "keycloak")
        assert "KEYCLOAK_ADMIN_PASSWORD" in keycloak_log
        assert ("ephemeral-redis", "Available") in rows(app, "Deployment")
        log = log_of(app, "storage")
        assert "created" in log and "PersistentVolumeClaim devpi/devpi-data-pvc" in log


async def test_run_all_without_a_repository_is_refused_before_anything_is_written(
    cluster, kubeconfig, make_app
):
    app = make_app(kubeconfig=kubeconfig)
    seen = Seen()
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await until(pilot, lambda: seen.of(Connected), what="connection")
        await until(pilot, lambda: seen.of(ClusterStatus), what="first snapshot")
        writes = len(cluster.writes())
        await pilot.press("a")  # run all remaining
        await answer_yes(pilot, app)
        await until(pilot, lambda: "build" in seen.failed(), what="the checks before any write")
        await until(pilot, lambda: seen.runs_ended(), what="the refused run to end")
        build_log = log_of(app, "build")
        assert "before anything was written" in build_log and "deploy_repo" in build_log
        assert len(cluster.writes()) == writes
        assert cluster.get("v1", "Namespace", NS) is None


async def test_failing_phase_enables_retry_and_shows_the_api_message(
    cluster, kubeconfig, make_app, settings, tmp_path
):
    apply_directly(cluster, settings, tmp_path, "namespace")
    message = 'persistentvolumeclaims "devpi-data-pvc" is forbidden: exceeded quota: storage'
    cluster.fail("PATCH", r"persistentvolumeclaims/devpi-data-pvc", 403, "Forbidden", message)
    app = make_app(kubeconfig=kubeconfig, watch_cluster=False)
    seen = Seen()
    async with app.run_test(size=SIZE, notifications=True, message_hook=seen) as pilot:
        await until(pilot, lambda: seen.of(Connected), what="connection")
        await settle(app, pilot)
        assert RETRY not in header_of(app).hints  # nothing failed yet
        phases_of(app).select("storage")
        await pilot.press("r")
        await answer_yes(pilot, app)
        await until(pilot, lambda: "storage" in seen.failed(), what="the phase to fail")
        await until(pilot, lambda: seen.runs_ended(), what="the run to end")
        assert state_of(app, "storage") is State.FAILED
        log = log_of(app, "storage")
        assert message in log
        assert "HTTP 403" in log
        await settle(app, pilot)
        assert RETRY in header_of(app).hints
        assert any(message in note for note in seen.notes())

        # the fault was a one-off: retry, play the storage controller, and it is healthy
        app.state.ctx.wait_timeout = 20
        await pilot.press("t")
        await answer_yes(pilot, app)
        await until(
            pilot,
            lambda: cluster.get("v1", "PersistentVolumeClaim", "devpi-data-pvc", NS) is not None,
            what="the PVC",
        )
        cluster.make_pvc_bound(NS, "devpi-data-pvc")
        await until(pilot, lambda: len(seen.runs_ended()) == 2, what="the retry")
        assert not seen.failed() and seen.runs_ended()[-1].ok
        await settle(app, pilot)
        assert state_of(app, "storage") is State.HEALTHY
        assert RETRY not in header_of(app).hints


async def test_rollback_asks_first_and_does_nothing_on_no(
    cluster, kubeconfig, make_app, settings, tmp_path
):
    apply_directly(cluster, settings, tmp_path, "namespace")
    app = make_app(kubeconfig=kubeconfig, watch_cluster=False)
    seen = Seen()
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await until(pilot, lambda: seen.of(Connected), what="connection")
        await settle(app, pilot)
        cluster.clear_log()
        phases_of(app).select("namespace")
        await pilot.press("b")
        await until(pilot, lambda: isinstance(app.screen, ConfirmRollback), what="the question")
        # what it would delete was read from the cluster first; nothing ran
        assert [m.phase for m in seen.of(RollbackPreviewRead)] == ["namespace"]
        assert not seen.started()
        dialog = app.screen
        assert "Namespace devpi" in str(dialog.query_one("#rollback-objects").render())
        # deleting package data needs the namespace typed in full
        await pilot.click("#delete-data")
        assert dialog.query_one("#yes", Button).disabled
        await pilot.press(*"devp")
        assert dialog.query_one("#yes", Button).disabled
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmRollback)
        await settle(app, pilot)
        assert not seen.started() and not seen.runs_ended()  # "no" ran nothing
        assert cluster.writes() == []
        assert cluster.get("v1", "Namespace", NS) is not None
        assert state_of(app, "namespace") is State.HEALTHY
        assert "rollback cancelled" in phases_of(app).logs["namespace"][-1].plain


async def test_rollback_on_yes_deletes_what_the_phase_made(
    cluster, kubeconfig, make_app, settings, tmp_path
):
    apply_directly(cluster, settings, tmp_path, "namespace", "storage")
    app = make_app(kubeconfig=kubeconfig, watch_cluster=False)
    seen = Seen()
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await until(pilot, lambda: seen.of(Connected), what="connection")
        await settle(app, pilot)
        phases_of(app).select("storage")
        await pilot.press("b")
        await until(pilot, lambda: isinstance(app.screen, ConfirmRollback), what="the question")
        assert not seen.started()  # nothing deleted before the answer
        await pilot.click("#yes")  # without asking for the data: the PVC is kept
        await until(pilot, lambda: seen.runs_ended(), what="the rollback")
        assert [(r.action, r.ok) for r in seen.runs_ended()] == [("rollback", True)]
        assert seen.started() == ["storage"]
        await settle(app, pilot)
        assert cluster.get("v1", "PersistentVolumeClaim", "devpi-data-pvc", NS) is not None
        log = log_of(app, "storage")
        # the TUI names no CLI flag, and the row says what the log says (the data is kept)
        assert "kept" in log and "package data is kept" in log and "--" not in log
        assert state_of(app, "storage") is State.HEALTHY
        assert "✔ healthy: rolled back; kept PersistentVolumeClaim" in log


async def test_plan_mode_with_no_cluster_lists_every_phase(make_app, tmp_path):
    app = make_app(kubeconfig=tmp_path / "no-such-kubeconfig")
    seen = Seen()
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await until(pilot, lambda: seen.of(Unreachable), what="the connect worker's answer")
        await settle(app, pilot)
        assert header_of(app).connection == "unreachable"
        assert "No kubeconfig" in header_of(app).reason
        assert "plan mode" in header_of(app).reason
        # what to do, in the TUI's terms: its own --kubeconfig, not the command line's commands
        (answer,) = seen.of(Unreachable)
        assert answer.hint == "Set KUBECONFIG or pass --kubeconfig."
        table = phases_of(app).query_one("#phase-table")
        assert [str(k.value) for k in table.rows] == [p.name for p in app.state.phase_list]
        assert len(app.state.phase_list) == 13
        for phase in app.state.phase_list:
            plan = phases_of(app).plans[phase.name]
            assert plan is not None
            if isinstance(phase, Phase) and phase.needs_cluster:
                # every cluster phase lists its objects, none compared (no cluster)
                assert plan.items and {i.action for i in plan.items} == {"unknown"}, phase.name
        # nothing can be written in plan mode: no key offers it, and "a" asks nothing
        assert RUN_ALL not in header_of(app).hints
        await pilot.press("a")
        await settle(app, pilot)
        assert app.screen.__class__.__name__ != "ConfirmRun" and not seen.started()


async def test_unreachable_cluster_opens_in_plan_mode(make_app, tmp_path):
    # a port nobody listens on: connection refused, at once
    port = free_port()
    config = tmp_path / "kubeconfig"
    FakeKubeAPI.write_kubeconfig.__get__(type("X", (), {"url": f"http://127.0.0.1:{port}",
                                                        "token": "t"})())(config)
    app = make_app(kubeconfig=config)
    seen = Seen()
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await until(pilot, lambda: seen.of(Unreachable), timeout=30,
                    what="the connect worker's answer")
        (answer,) = seen.of(Unreachable)
        assert "cannot reach the API server" in answer.reason
        assert answer.hint == "Is the cluster up and is this the right context?"
        assert not seen.of(Connected)
        await until(pilot, lambda: header_of(app).connection == "unreachable", what="plan mode")
        assert "cannot reach the API server" in header_of(app).reason


async def test_quit_with_live_watches_open_takes_under_a_second(cluster, kubeconfig, make_app):
    app = make_app(kubeconfig=kubeconfig)
    seen = Seen()
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await until(pilot, lambda: seen.of(ClusterStatus), what="watches")
        await settle(app, pilot)
        watcher = app.watcher
        await until(pilot, lambda: watcher.alive == len(watcher.sources) + 1 or watcher.alive == len(watcher.sources) + 2, what="threads")
        start = time.monotonic()
        await pilot.press("q")
    elapsed = time.monotonic() - start
    deadline = time.monotonic() + 1.0
    while watcher.alive and time.monotonic() < deadline:
        time.sleep(0.01)
    assert elapsed < 1.0, elapsed
    assert watcher.alive == 0
    assert time.monotonic() - start < 1.0
    assert not [t for t in threading.enumerate() if t.name.startswith("status-")]


async def test_quit_during_a_phase_asks_first(cluster, kubeconfig, make_app, settings, tmp_path):
    apply_directly(cluster, settings, tmp_path, "namespace")
    app = make_app(kubeconfig=kubeconfig, watch_cluster=False)
    seen = Seen()
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await until(pilot, lambda: seen.of(Connected), what="connection")
        await settle(app, pilot)
        app.state.ctx.wait_timeout = 20
        phases_of(app).select("storage")
        await pilot.press("r")  # waits for the PVC to be Bound: nobody binds it
        await answer_yes(pilot, app)
        await until(pilot, lambda: seen.started() == ["storage"], what="the phase")
        await pilot.press("q")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "ConfirmQuit"
        await pilot.press("n")
        await pilot.pause()
        assert app.is_running and not seen.runs_ended()  # still running
        start = time.monotonic()
        await pilot.press("q", "y")
    # the phase would wait 20 s for its PVC: quitting cancels it instead (5 s leaves room for a
    # loaded machine; the figure itself is bench/bench_tui.py's)
    assert time.monotonic() - start < 5.0
    assert app.state.ctx.cancel.is_set()


async def test_config_view_validates_as_the_admin_types(make_app):
    app = make_app(plan=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        field = app.screen.query_one("#input-domain", Input)
        field.focus()
        field.value = ""
        await pilot.press(*"Bad_x")
        await pilot.pause()
        error = app.screen.query_one("#error-domain").render()
        assert "RFC 1123" in str(error)
        assert field.has_class("-invalid")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not app.state.config_path.exists()  # nothing saved while a value is wrong
        field.value = "example.org"  # as if typed: Input.Changed validates it
        await pilot.pause()
        assert not field.has_class("-invalid")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert 'domain = "example.org"' in app.state.config_path.read_text()
        assert app.state.settings.domain == "example.org"


def test_first_screen_paints_before_the_kubernetes_client_loads(tmp_path):
    """`import kubernetes` costs ~0.3 s: the connect worker loads it after the first paint."""
    import os
    import subprocess
    import sys

    code = f"""
import sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[2] / "src")!r})
from thinkube_devpi.config import Settings
from thinkube_devpi.tui.app import DevpiApp

app = DevpiApp(Settings(), kubeconfig={str(tmp_path / "none")!r},
               config_path={str(tmp_path / "c.toml")!r})
seen = []
async def first(pilot):
    app.call_after_refresh(lambda: (seen.append("kubernetes" in sys.modules), app.exit()))
app.run(headless=True, size=(120, 34), auto_pilot=first)
print("loaded at first paint:", seen[0])
"""
    env = {**os.environ, "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=60, check=True)
    assert "loaded at first paint: False" in out.stdout
