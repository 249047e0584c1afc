"""Phase 75 against the fake API server and a real S3 server: plan, apply, status, rollback."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakes.backup_kubelet import BackupKubelet
from fakes.devpi_server import DevpiServer
from fakes.kube_api import FakeKubeAPI
from fakes.s3 import S3Server
from leakcheck import assert_absent
from thinkube_devpi.config import Settings
from thinkube_devpi.installer.backup import core
from thinkube_devpi.installer.events import Event, ObjectDeleted, State
from thinkube_devpi.installer.kube import Kube
from thinkube_devpi.installer.phases.base import Context, PhaseError
from thinkube_devpi.installer.phases.p75_backup import BackupPhase
from thinkube_devpi.installer.runner import Runner

NS = "devpi"
ROOT_PASSWORD = "root-pw-from-the-secret-" + "x" * 8


@pytest.fixture
def s3_settings(s3_server: S3Server, bucket: str) -> Settings:
    return Settings(
        domain="example.com",
        backup_s3_endpoint=s3_server.endpoint,
        backup_s3_bucket=bucket,
        backup_s3_prefix=s3_server.prefix,
    ).validate()


@pytest.fixture
def keys(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    monkeypatch.setenv(core.ACCESS_KEY_ENV, s3_server.access_key)
    monkeypatch.setenv(core.SECRET_KEY_ENV, s3_server.secret_key)
    return s3_server


@pytest.fixture
def phase_ctx(s3_settings: Settings, kube: Kube, fake_kube: FakeKubeAPI) -> Context:
    fake_kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    return Context(s3_settings, kube, wait_timeout=10)


@pytest.fixture
def kubelet(fake_kube: FakeKubeAPI, fresh_devpi_server: DevpiServer) -> Iterator[BackupKubelet]:
    """Runs the backup Jobs against the test devpi-server's directory (the volume's /data)."""
    with BackupKubelet(fake_kube, fresh_devpi_server.base) as k:
        yield k


def target(s3: S3Server, bucket: str) -> core.S3Target:
    cfg = core.S3Config(endpoint=s3.endpoint, bucket=bucket, prefix=s3.prefix)
    return core.S3Target(cfg, core.Credentials(s3.access_key, s3.secret_key))


def test_plan_shows_the_schedule_and_where_the_keys_come_from(s3_settings: Settings) -> None:
    plan = BackupPhase(Context(s3_settings)).plan()
    secret, cron = plan.items
    assert secret.secret_keys == {
        "access-key": "from THINKUBE_DEVPI_S3_ACCESS_KEY",
        "secret-key": "from THINKUBE_DEVPI_S3_SECRET_KEY",
    }
    spec = cron.manifest["spec"]
    assert spec["schedule"] == "17 3 * * *" and spec["concurrencyPolicy"] == "Forbid"
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    [term] = pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"]["app.kubernetes.io/name"] == "devpi"
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "devpi-data-pvc"}} in pod["volumes"]
    [c] = pod["containers"]
    assert c["command"][:3] == ["python3", "/opt/thinkube-devpi/devpi_backup.py", "backup"]
    assert c["command"][-4:] == ["--keep-daily", "7", "--keep-weekly", "4"]
    secret_vars = {e["name"] for e in c["env"] if "valueFrom" in e}
    assert secret_vars == {core.ACCESS_KEY_ENV, core.SECRET_KEY_ENV}
    assert not any("$(" in arg for arg in c["command"])


def test_apply_runs_the_first_backup_and_status_follows_the_newest(
    phase_ctx: Context, fake_kube: FakeKubeAPI, keys: S3Server, bucket: str,
    fresh_devpi_server: DevpiServer, tmp_path: Path, kubelet: BackupKubelet,
) -> None:  # fmt: skip
    events: list[Event] = []
    assert Runner(phase_ctx, emit=events.append).apply(["backup"]), events[-1]
    [first] = core.complete_backups(target(keys, bucket))
    assert kubelet.ran[0][:5] == ["backup", "--serverdir", f"{fresh_devpi_server.base}/server", "--work", f"{fresh_devpi_server.base}/.backup-work"]
    cron = fake_kube.get("batch/v1", "CronJob", "devpi-backup", NS)
    assert cron is not None
    stored = fake_kube.get("v1", "Secret", "devpi-backup-s3", NS)
    assert stored is not None and set(stored["data"]) == {"access-key", "secret-key"}
    rv = (cron["metadata"]["resourceVersion"], stored["metadata"]["resourceVersion"])

    phase = BackupPhase(phase_ctx)
    status = phase.status()
    assert status.state is State.HEALTHY and f"newest backup {first.id}" in status.reason

    # a later backup is made (what the CronJob's pod does at night); status reads S3 again
    import time

    time.sleep(1.1)
    made = core.backup(fresh_devpi_server.serverdir, target(keys, bucket), tmp_path / "work")
    status = phase.status()
    assert status.state is State.HEALTHY, status.reason
    assert f"newest backup {made.id}: 0 min old" in status.reason and "KB" in status.reason

    # a converged install: applying again changes nothing
    assert Runner(phase_ctx, emit=events.append).apply(["backup"])
    cron = fake_kube.get("batch/v1", "CronJob", "devpi-backup", NS)
    stored = fake_kube.get("v1", "Secret", "devpi-backup-s3", NS)
    assert (cron["metadata"]["resourceVersion"], stored["metadata"]["resourceVersion"]) == rv


def test_status_fails_when_the_newest_backup_is_older_than_the_schedule_allows(
    phase_ctx: Context, keys: S3Server, bucket: str, fresh_devpi_server: DevpiServer, tmp_path: Path,
    fake_kube: FakeKubeAPI,
) -> None:  # fmt: skip
    phase = BackupPhase(phase_ctx)
    for obj in phase.objects():
        phase.apply_one(obj)  # the objects only: no first backup
    status = phase.status()
    assert status.state is State.PROGRESSING and "no backup yet" in status.reason
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=27)
    core.backup(fresh_devpi_server.serverdir, target(keys, bucket), tmp_path / "w", now=old)
    status = BackupPhase(phase_ctx).status()
    assert status.state is State.FAILED
    assert "27 h 0 min old" in status.reason and "older than the schedule allows (26 h 0 min)" in status.reason

    # a weekly schedule allows it
    phase_ctx.settings.backup_schedule = "17 3 * * 0"
    assert BackupPhase(phase_ctx).health().state is State.HEALTHY


def test_rollback_removes_the_schedule_never_the_backups(
    phase_ctx: Context, fake_kube: FakeKubeAPI, keys: S3Server, bucket: str, kubelet: BackupKubelet,
) -> None:  # fmt: skip
    assert Runner(phase_ctx).apply(["backup"])
    [made] = core.complete_backups(target(keys, bucket))
    events: list[Event] = []
    assert Runner(phase_ctx, emit=events.append).rollback(["backup"])
    deleted = {e.ref.kind for e in events if isinstance(e, ObjectDeleted) and e.outcome == "deleted"}
    assert deleted == {"CronJob", "Secret", "Job"}  # the first backup's Job too
    assert fake_kube.get("batch/v1", "CronJob", "devpi-backup", NS) is None
    assert [b.id for b in core.complete_backups(target(keys, bucket))] == [made.id]


def test_missing_keys_or_bucket_fail_before_anything_is_written(
    phase_ctx: Context, fake_kube: FakeKubeAPI, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_kube.clear_log()
    with pytest.raises(PhaseError) as err:
        BackupPhase(phase_ctx).apply(lambda e: None)
    assert "THINKUBE_DEVPI_S3_ACCESS_KEY" in err.value.message
    monkeypatch.setenv(core.ACCESS_KEY_ENV, s3_server.access_key)
    monkeypatch.setenv(core.SECRET_KEY_ENV, s3_server.secret_key)
    phase_ctx.settings.backup_s3_bucket = "not-made-yet"
    with pytest.raises(PhaseError) as err:
        BackupPhase(phase_ctx).apply(lambda e: None)
    assert "bucket not-made-yet does not exist" in err.value.message
    assert fake_kube.writes() == []


def test_no_secret_in_plans_events_or_the_cronjob(
    phase_ctx: Context, fake_kube: FakeKubeAPI, keys: S3Server, kubelet: BackupKubelet
) -> None:
    events: list[Event] = []
    runner = Runner(phase_ctx, emit=events.append)
    plans = runner.plan(["backup"])
    assert runner.apply(["backup"])
    secrets = [keys.secret_key]
    assert_absent("plan", [p.__dict__ for p in plans], secrets)
    assert_absent("events", [repr(e) for e in events], secrets)
    cron = fake_kube.get("batch/v1", "CronJob", "devpi-backup", NS)
    assert_absent("CronJob", json.dumps(cron), secrets)
    bodies = [w for w in fake_kube.writes() if "/secrets/" not in w.path]
    assert_absent("request bodies outside the Secret", [repr(w) for w in bodies], secrets)


def _argo_app_and_devpi(fake: FakeKubeAPI, phase_ctx: Context) -> None:
    """What phases 70 and ArgoCD leave: Application devpi (self-heal on) and devpi's Deployment."""
    from thinkube_devpi.installer.phases.p70_deploy import DeployPhase

    phase_ctx.require_kube().apply(DeployPhase(phase_ctx).application())
    labels = {"app.kubernetes.io/name": "devpi", "app.kubernetes.io/instance": "devpi"}
    fake.create({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "devpi", "namespace": NS, "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "devpi", "image": "registry.example.com/thinkube/devpi:20261204T000000-abcdef0"}]}}},
    }, manager="argocd-controller")  # fmt: skip
    fake.make_deployment_ready(NS, "devpi")
    fake.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "devpi-root", "namespace": NS},
                 "data": {"password": base64.b64encode(ROOT_PASSWORD.encode()).decode()}})  # fmt: skip


def self_heal(fake: FakeKubeAPI) -> bool:
    app = fake.get("argoproj.io/v1alpha1", "Application", "devpi", "argocd") or {}
    return bool(app["spec"]["syncPolicy"]["automated"]["selfHeal"])


def test_restore_pauses_argo_cd_self_heal_stops_devpi_and_brings_both_back(
    phase_ctx: Context, fake_kube: FakeKubeAPI, keys: S3Server, bucket: str,
    fresh_devpi_server: DevpiServer, kubelet: BackupKubelet, controllers,  # type: ignore[no-untyped-def]
) -> None:  # fmt: skip
    from thinkube_devpi.installer.backup import cluster

    _argo_app_and_devpi(fake_kube, phase_ctx)
    phase_ctx.wait_timeout = 120  # a restore is a backup, then an import
    assert Runner(phase_ctx).apply(["backup"])
    [good] = core.complete_backups(target(keys, bucket))
    assert kubelet.ran[-1][0] == "backup"
    seen: dict[str, object] = {}

    def during(argv: list[str]) -> None:
        if argv[0] == "restore":
            dep = fake_kube.get("apps/v1", "Deployment", "devpi", NS) or {}
            seen.update(self_heal=self_heal(fake_kube), replicas=dep["spec"]["replicas"])
            fresh_devpi_server.stop()  # the pod is gone: nothing writes the volume

    kubelet.before_run = during
    phase = BackupPhase(phase_ctx)
    with pytest.raises(PhaseError, match="--confirm=devpi"):
        cluster.restore(phase, lambda e: None, good.id, confirm=None)
    with pytest.raises(PhaseError, match="There is no backup 20200101T000000Z"):
        cluster.restore(phase, lambda e: None, "20200101T000000Z", confirm="devpi")
    assert self_heal(fake_kube) and len(kubelet.ran) == 1  # refused before anything changed

    events: list[Event] = []
    cluster.restore(phase, events.append, good.id, confirm="devpi")
    assert seen == {"self_heal": False, "replicas": 0}
    assert self_heal(fake_kube)
    assert (fake_kube.get("apps/v1", "Deployment", "devpi", NS) or {})["spec"]["replicas"] == 1
    restore_job = [j for j in fake_kube.list("batch/v1", "Job", NS) if "restore" in j["metadata"]["name"]]
    pod = restore_job[0]["spec"]["template"]["spec"]
    assert "affinity" not in pod  # devpi is stopped: the volume is free on any node
    assert {"name": "DEVPISERVER_ROOT_PASSWD", "valueFrom": {"secretKeyRef": {"name": "devpi-root", "key": "password"}}} in pod["containers"][0]["env"]
    # the data before the restore was saved as a backup first, and kept aside on the volume
    assert len(core.complete_backups(target(keys, bucket))) == 2
    assert list(fresh_devpi_server.base.glob(f"server.before-{good.id}"))
    fresh_devpi_server.start()
    from installer.backup.conftest import login

    login(fresh_devpi_server.url, "root", ROOT_PASSWORD)  # root follows Secret devpi-root
