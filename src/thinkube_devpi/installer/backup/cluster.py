"""Backups in the cluster: run one now, restore one, with devpi and Argo CD handled in order.

Both run the backup program (``core``) in a Job made from phase 75's pod template, so the same
code runs on the schedule, on demand and in the tests.

A restore stops devpi first, and Argo CD would start it again: the Application ``devpi`` has
self-heal on (phase 70), which reverts a Deployment scaled to 0 within seconds. So the restore
turns self-heal off in the Application (applied with the installer's own field manager, the
same way phase 70 writes it, so no conflict), scales devpi to 0, waits until its pods are gone
(the ReadWriteOnce volume is free), runs the restore Job (which saves the current data as a
backup first), then turns self-heal back on and scales devpi up again, whatever happened.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from thinkube_devpi.installer import deployrepo
from thinkube_devpi.installer.backup import core
from thinkube_devpi.installer.events import Emit, LogLine, ObjectApplied, ObjectRef
from thinkube_devpi.installer.kube import KubeError
from thinkube_devpi.installer.manifests import applied_labels, meta, secret_env, selector
from thinkube_devpi.installer.phases.base import PhaseError
from thinkube_devpi.installer.phases.p75_backup import (
    CRONJOB,
    PROGRAM,
    SERVERDIR,
    WORKDIR,
    BackupPhase,
)

MANUAL = "thinkube-devpi/backup-run"


def _job_done(job: dict[str, Any] | None) -> bool:
    status = (job or {}).get("status") or {}
    if status.get("succeeded") or status.get("failed"):
        return True
    return any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def job_log(phase: BackupPhase, job_name: str, lines: int = 8) -> str:
    kube = phase.ctx.require_kube()
    try:
        pods, _ = kube.list(
            "v1", "Pod", phase.settings.namespace, label_selector=f"job-name={job_name}"
        )
        if not pods:
            return "no pod to read a log from"
        last = max(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""))
        text = list(kube.pod_log(phase.settings.namespace, last["metadata"]["name"], tail_lines=lines))
    except KubeError as exc:
        return f"its log is unavailable ({exc.reason or exc})"
    return " | ".join(line for line in text if line.strip()) or "empty log"


def run_job(
    phase: BackupPhase, emit: Emit, kind: str, command: list[str], *, beside_devpi: bool = True
) -> str:
    """Run the backup program once as Job ``devpi-<kind>-<UTC time>``; its log when it succeeded."""
    kube = phase.ctx.require_kube()
    s = phase.settings
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dt%H%M%S")
    name = f"devpi-{kind}-{stamp}"
    spec = phase.job_spec(command)
    if not beside_devpi:  # devpi is stopped: the volume is free on any node
        del spec["template"]["spec"]["affinity"]
    if kind == "restore":
        # root's password follows Secret devpi-root (a fresh install after a loss made a new one)
        spec["template"]["spec"]["containers"][0]["env"].append(
            secret_env(core.ROOT_PASSWORD_ENV, deployrepo.ROOT_SECRET, "password")
        )
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            **meta(name, s.namespace, **applied_labels(CRONJOB)),
            "annotations": {MANUAL: kind},
        },
        "spec": spec,
    }
    result = kube.apply(job)
    emit(ObjectApplied(phase.name, result.ref, result.outcome))
    ref = ObjectRef("batch/v1", "Job", name, s.namespace)
    done = phase.wait_for(emit, ref, _job_done, f"Job {name} ({kind})", timeout=phase.ctx.wait_timeout)
    status = (done or {}).get("status") or {}
    if not status.get("succeeded"):
        raise PhaseError(
            f"Job {s.namespace}/{name} failed: {job_log(phase, name)}",
            f"kubectl -n {s.namespace} logs job/{name} shows all of it.",
        )
    return job_log(phase, name, lines=20)


def backup_now(phase: BackupPhase, emit: Emit) -> core.BackupInfo:
    """One backup now, beside the running devpi; the backup the object storage then lists."""
    if phase.ctx.require_kube().get(phase.cronjob_ref) is None:
        raise PhaseError(
            f"CronJob {CRONJOB} does not exist.", "Apply phase 75 first: tk-devpi install apply backup"
        )
    run_job(phase, emit, "backup", phase.backup_command())
    newest = core.newest(phase.target())
    if newest is None:
        raise PhaseError("The backup Job succeeded but the object storage lists no backup.")
    emit(LogLine(phase.name, f"backup {newest.id} complete ({newest.size} bytes)"))
    return newest


def _application(phase: BackupPhase, self_heal: bool) -> dict[str, Any] | None:
    from thinkube_devpi.installer.phases.p70_deploy import DeployPhase

    deploy = DeployPhase(phase.ctx)
    if phase.ctx.require_kube().get(deploy.app_ref) is None:
        return None
    app = deploy.application()
    app["spec"]["syncPolicy"]["automated"]["selfHeal"] = self_heal
    return app


def _deployment_ref(phase: BackupPhase) -> ObjectRef:
    return ObjectRef("apps/v1", "Deployment", deployrepo.NAME, phase.settings.namespace)


def _scale(phase: BackupPhase, emit: Emit, replicas: int) -> None:
    kube = phase.ctx.require_kube()
    ref = _deployment_ref(phase)
    if kube.get(ref) is None:
        emit(LogLine(phase.name, f"{ref} does not exist: nothing to scale"))
        return
    kube.merge_patch(ref, {"spec": {"replicas": replicas}})
    emit(LogLine(phase.name, f"{ref} scaled to {replicas}"))


def _devpi_pods(phase: BackupPhase) -> int:
    labels = ",".join(f"{k}={v}" for k, v in selector(deployrepo.NAME).items())
    pods, _ = phase.ctx.require_kube().list("v1", "Pod", phase.settings.namespace, label_selector=labels)
    return len(pods)


def restore(phase: BackupPhase, emit: Emit, backup_id: str, *, confirm: str | None) -> str:
    """Restore ``backup_id`` over the live data, saving that data as a backup first."""
    s = phase.settings
    core.check_id(backup_id)
    if confirm != s.namespace:
        raise PhaseError(
            f"A restore replaces the package data in namespace {s.namespace}: it needs the "
            "namespace name typed as confirmation.",
            f"Pass --confirm={s.namespace} (the current data is saved as a backup first).",
        )
    kube = phase.ctx.require_kube()
    try:
        manifest = core.read_manifest(phase.target(), backup_id)
    except core.BackupError as exc:
        raise PhaseError(exc.message, exc.hint) from None
    emit(
        LogLine(
            phase.name,
            f"restoring backup {backup_id}: {len(manifest.users)} users, "
            f"{len(manifest.indexes)} indexes, {manifest.release_files} release files",
        )
    )
    paused = _application(phase, self_heal=False)
    try:
        if paused is not None:
            kube.apply(paused, force=phase.ctx.force_conflicts)
            emit(LogLine(phase.name, "Argo CD self-heal paused for Application devpi"))
        _scale(phase, emit, 0)
        phase.wait_for(
            emit,
            _deployment_ref(phase),
            lambda obj: obj is None or _devpi_pods(phase) == 0,
            "devpi's pods to stop (the volume must be free)",
        )
        command = [
            "python3", PROGRAM, "restore", backup_id, "--serverdir", SERVERDIR, "--work", WORKDIR,
        ]  # fmt: skip
        log = run_job(phase, emit, "restore", command, beside_devpi=False)
    finally:
        _scale(phase, emit, 1)
        healed = _application(phase, self_heal=True)
        if healed is not None:
            kube.apply(healed, force=phase.ctx.force_conflicts)
            emit(LogLine(phase.name, "Argo CD self-heal on again for Application devpi"))
    if kube.get(_deployment_ref(phase)) is not None:
        phase.wait_for(
            emit,
            _deployment_ref(phase),
            lambda obj: bool(((obj or {}).get("status") or {}).get("availableReplicas")),
            "devpi to serve again",
        )
    emit(LogLine(phase.name, f"restored backup {backup_id}; check it with: tk-devpi install test"))
    return log
