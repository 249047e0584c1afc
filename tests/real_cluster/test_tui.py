"""The TUI against the real control plane: it connects, runs phases 10 to 30, and its cluster view
shows the rows the real controllers make (the PVC bound by the provisioner stand-in and the real
binder, the redis pod scheduled and made Running by kwok). Nobody plays a controller here."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from real_cluster.harness import RealCluster
from thinkube_devpi.config import Settings
from thinkube_devpi.installer.events import State
from thinkube_devpi.installer.kube import Kube
from thinkube_devpi.installer.phases.base import Context, Phase
from thinkube_devpi.installer.runner import Runner
from thinkube_devpi.tui.app import DevpiApp
from thinkube_devpi.tui.messages import ClusterStatus, Connected
from tui.conftest import SIZE, Seen, header_of, phases_of, settle, until
from tui.test_pilot import rows, state_of

pytestmark = pytest.mark.real_cluster


@pytest.fixture
def tui_settings(exclusive: RealCluster, tmp_path: Path) -> Iterator[Settings]:
    settings = Settings(domain="example.com", namespace=f"devpi-{secrets.token_hex(3)}").validate()
    yield settings
    kube = Kube.connect(exclusive.kubeconfig, cache_dir=tmp_path / "cleanup-cache")
    Runner(
        Context(settings, kube, wait_timeout=60, delete_package_data=settings.namespace),
        phases=None,
    ).rollback(["redis", "storage", "namespace"])
    exclusive.delete("v1", "Namespace", settings.namespace)


async def test_the_tui_shows_live_rows_of_the_real_cluster(
    exclusive: RealCluster, tui_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # as in tests/tui: the checks before the first write would stop "run all" for want of a
    # deployment repository; here the run goes phase by phase up to Keycloak
    monkeypatch.setattr(Phase, "precheck", lambda self: None)
    ns = tui_settings.namespace
    app = DevpiApp(
        tui_settings,
        kubeconfig=exclusive.kubeconfig,
        config_path=tmp_path / "config.toml",
        cache_dir=tmp_path / "cache",
        journal_dir=tmp_path / "journal",
    )
    app.animation_level = "none"
    seen = Seen()
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await until(pilot, lambda: seen.of(Connected), timeout=30, what="connection")
        assert header_of(app).context == "admin@thinkube-devpi-test"
        app.state.ctx.wait_timeout = 60
        await until(pilot, lambda: seen.of(ClusterStatus), timeout=30, what="first snapshot")
        await pilot.press("a")  # run all remaining: 10, 20, 30 go through, keycloak stops
        # it asks first, listing what each phase creates or changes
        await until(pilot, lambda: app.screen.__class__.__name__ == "ConfirmRun", what="the question")
        await pilot.press("y")
        await until(
            pilot,
            lambda: seen.started() or seen.runs_ended(),
            what=f"the run to start (header: {header_of(app).connection})",
        )
        assert seen.failed() in (set(), {"keycloak"}), {
            name: "\n".join(t.plain for t in phases_of(app).logs[name]) for name in seen.failed()
        }
        await pilot.press("2")
        await until(
            pilot,
            lambda: ("devpi-data-pvc", "Bound") in rows(app, "PersistentVolumeClaim"),
            timeout=60,
            what="the PVC to show Bound",
        )
        await until(
            pilot,
            lambda: any(
                n.startswith("ephemeral-redis-") and s == "Running" for n, s in rows(app, "Pod")
            ),
            timeout=60,
            what="the redis pod, Running",
        )
        await until(pilot, lambda: seen.runs_ended(), timeout=90, what="the run to finish")
        await settle(app, pilot)
        for name in ("namespace", "storage", "redis"):
            assert state_of(app, name) is State.HEALTHY, name
        assert seen.failed() == {"keycloak"}
        assert ("ephemeral-redis", "Available") in rows(app, "Deployment")
        log = "\n".join(t.plain for t in phases_of(app).logs["storage"])
        assert f"PersistentVolumeClaim {ns}/devpi-data-pvc" in log
