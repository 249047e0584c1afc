"""Phase 75: a nightly backup of devpi's whole state to thinkube's object storage.

What it makes: Secret ``devpi-backup-s3`` (the access key pair, from the environment, the
keyring or the TUI) and CronJob ``devpi-backup``. The CronJob's pod runs the backup program
(:mod:`thinkube_devpi.installer.backup.core`, shipped in the devpi image) BESIDE the devpi pod:
a required podAffinity puts it on the node where devpi runs, so it can mount the same
ReadWriteOnce volume (ReadWriteOnce binds a volume to a node, not to a pod). There it runs
``devpi-export`` against the live server directory (one SQLite read transaction: a consistent
state while devpi keeps serving) and streams the export to S3.

Why not devpi's replication protocol: a replica needs the live server restarted with
``--role primary``, downloads every release file again into a scratch disk as large as the
data, and must be watched until it has caught up; beside the pod, the export costs hard links on
the same volume and no second copy.

Status is the newest backup's age and size, read from the object storage, failing when it is
older than the schedule allows. Rollback removes the schedule and the credentials Secret and
never touches a backup.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from thinkube_devpi.installer import deployrepo
from thinkube_devpi.installer.backup import core
from thinkube_devpi.installer.backup.schedule import allowed_age, human, size
from thinkube_devpi.installer.events import Emit, ObjectRef, State
from thinkube_devpi.installer.manifests import (
    applied_labels,
    container_security,
    meta,
    pod_security,
    resources,
    secret_env,
    selector,
)
from thinkube_devpi.installer.phases.base import (
    Context,
    Desired,
    KeySource,
    Phase,
    PhaseError,
    PhaseStatus,
    SecretObject,
    decode_secret_data,
)
from thinkube_devpi.secrets import Secret, SecretError, lookup

CRONJOB = "devpi-backup"
NAME_LABEL = "app.kubernetes.io/name"
S3_SECRET = "devpi-backup-s3"
ACCESS_KEY, SECRET_KEY = "access-key", "secret-key"
KEY_ENV = {ACCESS_KEY: core.ACCESS_KEY_ENV, SECRET_KEY: core.SECRET_KEY_ENV}
PROGRAM = "/opt/thinkube-devpi/devpi_backup.py"
SERVERDIR = "/data/server"
WORKDIR = "/data/.backup-work"


def find_key(ctx: Context, env_name: str) -> Secret | None:
    """The TUI's masked field for this run, then the environment, then the keyring."""
    if env_name in ctx.session_secrets:
        return ctx.session_secrets[env_name]
    try:
        return lookup(env_name, interactive=False)
    except SecretError:
        import os

        value = os.environ.get(env_name)
        return Secret(value, f"from {env_name}") if value else None


class S3Key(KeySource):
    """One half of the object storage's access key pair; kept once stored in the cluster."""

    def __init__(self, env_name: str) -> None:
        self.env_name = env_name
        self.describe = f"from {env_name}"

    def resolve(self, existing: str | None, resolved: dict[str, Secret], ctx: Context) -> Secret:
        found = find_key(ctx, self.env_name)
        if found is not None:
            return found
        if existing:
            return Secret(existing, source="kept")
        raise PhaseError(
            f"{self.env_name} is not set.",
            f"Export {core.ACCESS_KEY_ENV} and {core.SECRET_KEY_ENV} (or store them in the "
            "keyring) with an access key pair of thinkube's object storage (SeaweedFS).",
            setting=self.env_name,
        )


def s3_config(settings: Any) -> core.S3Config:
    return core.S3Config(
        endpoint=settings.s3_endpoint,
        bucket=settings.backup_s3_bucket,
        prefix=settings.backup_s3_prefix,
        region=settings.backup_s3_region,
        ca_file=settings.ca_file,
    )


class BackupPhase(Phase):
    number = 75
    name = "backup"
    title = "Nightly backup to object storage"
    summary = (
        "CronJob devpi-backup beside the devpi pod: devpi-export of the live server streamed to "
        "S3 with a manifest of sizes and sha256; status is the newest backup's age and size."
    )

    @property
    def cronjob_ref(self) -> ObjectRef:
        return ObjectRef("batch/v1", "CronJob", CRONJOB, self.settings.namespace)

    @property
    def secret_ref(self) -> ObjectRef:
        return ObjectRef("v1", "Secret", S3_SECRET, self.settings.namespace)

    # -- objects

    def secret(self) -> SecretObject:
        return SecretObject(
            S3_SECRET,
            self.settings.namespace,
            {ACCESS_KEY: S3Key(core.ACCESS_KEY_ENV), SECRET_KEY: S3Key(core.SECRET_KEY_ENV)},
        )

    def image(self) -> str:
        """The image devpi runs now (same devpi-server as the data), read from its Deployment."""
        s = self.settings
        kube = self.ctx.kube
        live = (
            kube.get(ObjectRef("apps/v1", "Deployment", deployrepo.NAME, s.namespace))
            if kube is not None
            else None
        )
        try:
            image = str(live["spec"]["template"]["spec"]["containers"][0]["image"])  # type: ignore[index]
            if ":" in image.rsplit("/", 1)[-1]:
                return image
        except (TypeError, KeyError, IndexError):
            pass
        return f"{deployrepo.image_name(s)}:{deployrepo.UNBUILT}"

    def pod_spec(self, command: list[str]) -> dict[str, Any]:
        s = self.settings
        env = [
            {"name": "BACKUP_S3_ENDPOINT", "value": s.s3_endpoint},
            {"name": "BACKUP_S3_BUCKET", "value": s.backup_s3_bucket},
            {"name": "BACKUP_S3_PREFIX", "value": s.backup_s3_prefix},
            {"name": "BACKUP_S3_REGION", "value": s.backup_s3_region},
            secret_env(core.ACCESS_KEY_ENV, S3_SECRET, ACCESS_KEY),
            secret_env(core.SECRET_KEY_ENV, S3_SECRET, SECRET_KEY),
        ]
        return {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": pod_security(deployrepo.UID, fs_group=deployrepo.UID),
            "imagePullSecrets": [{"name": deployrepo.PULL_SECRET}],
            # on the devpi pod's node: the only place its ReadWriteOnce volume can be mounted
            "affinity": {
                "podAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "labelSelector": {"matchLabels": selector(deployrepo.NAME)},
                            "topologyKey": "kubernetes.io/hostname",
                        }
                    ]
                }
            },
            "containers": [
                {
                    "name": "backup",
                    "image": self.image(),
                    "command": command,
                    "env": env,
                    "resources": resources("50m", "128Mi", "1", "512Mi"),
                    "securityContext": container_security(),
                    "volumeMounts": [
                        {"name": "data", "mountPath": "/data"},
                        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 (in the pod)
                    ],
                }
            ],
            "volumes": [
                {"name": "data", "persistentVolumeClaim": {"claimName": deployrepo.PVC}},
                {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
            ],
        }

    def backup_command(self) -> list[str]:
        s = self.settings
        return [
            "python3", PROGRAM, "backup",
            "--serverdir", SERVERDIR,
            "--work", WORKDIR,
            "--keep-daily", str(s.backup_keep_daily),
            "--keep-weekly", str(s.backup_keep_weekly),
        ]  # fmt: skip

    def job_spec(self, command: list[str]) -> dict[str, Any]:
        return {
            "backoffLimit": 1,
            "activeDeadlineSeconds": 6 * 3600,
            "ttlSecondsAfterFinished": 7 * 86400,
            "template": {
                "metadata": {"labels": selector(CRONJOB)},
                "spec": self.pod_spec(command),
            },
        }

    def cronjob(self) -> dict[str, Any]:
        s = self.settings
        return {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            # not Argo CD's instance label: under label tracking it would prune what git lacks
            "metadata": meta(CRONJOB, s.namespace, **applied_labels(CRONJOB)),
            "spec": {
                "schedule": s.backup_schedule,
                "timeZone": "Etc/UTC",
                "concurrencyPolicy": "Forbid",
                "startingDeadlineSeconds": 3600,
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 3,
                "jobTemplate": {
                    "metadata": {"labels": applied_labels(CRONJOB)},
                    "spec": self.job_spec(self.backup_command()),
                },
            },
        }

    def objects(self) -> list[Desired]:
        return [self.secret(), self.cronjob()]

    # -- the object storage, with the credentials the cluster holds

    def credentials(self) -> core.Credentials:
        keys: dict[str, str] = {}
        for key, env_name in KEY_ENV.items():
            found = find_key(self.ctx, env_name)
            if found is not None:
                keys[key] = found.reveal()
        if len(keys) < 2 and self.ctx.kube is not None:
            stored = decode_secret_data(self.ctx.kube.get(self.secret_ref))
            for key in KEY_ENV:
                keys.setdefault(key, stored.get(key, ""))
        if not (keys.get(ACCESS_KEY) and keys.get(SECRET_KEY)):
            raise PhaseError(
                f"No access key pair for the object storage ({core.ACCESS_KEY_ENV}, "
                f"{core.SECRET_KEY_ENV}).",
                f"Export them or store them in the keyring; after phase 75 ran, Secret "
                f"{self.settings.namespace}/{S3_SECRET} holds them.",
                setting=core.SECRET_KEY_ENV if keys.get(ACCESS_KEY) else core.ACCESS_KEY_ENV,
            )
        return core.Credentials(keys[ACCESS_KEY], keys[SECRET_KEY])

    def target(self) -> core.S3Target:
        return core.S3Target(s3_config(self.settings), self.credentials())

    # -- checks

    def preflight(self) -> None:
        kube = self.ctx.require_kube()
        if not kube.has_kind("batch/v1", "CronJob"):
            raise PhaseError("The cluster does not serve batch/v1 CronJob (Kubernetes 1.21+).")
        try:
            self.target().check()
        except core.BackupError as exc:
            raise PhaseError(exc.message, exc.hint) from None

    def wait_ready(self, emit: Emit) -> None:
        """The first backup runs now rather than tonight, so a broken setup shows at once."""
        if self.health().healthy:
            return
        from thinkube_devpi.installer.backup.cluster import backup_now

        self.log(emit, "running the first backup now (a Job from the CronJob's template)")
        backup_now(self, emit)

    # -- rollback

    def rollback(self, emit: Emit) -> None:
        """The schedule, its runs and the credentials go; the backups in the bucket stay."""
        kube = self.ctx.require_kube()
        jobs, _ = kube.list(
            "batch/v1", "Job", self.settings.namespace, label_selector=f"{NAME_LABEL}={CRONJOB}"
        )
        runs: list[Desired] = [
            {"apiVersion": "batch/v1", "kind": "Job", "metadata": dict(j["metadata"])} for j in jobs
        ]
        self.delete_objects(runs, emit)
        super().rollback(emit)
        self.log(
            emit,
            f"the backups in {self.settings.s3_endpoint} bucket {self.settings.backup_s3_bucket} "
            "are kept",
        )

    # -- status

    def health(self) -> PhaseStatus:
        try:
            newest = core.newest(self.target())
        except (core.BackupError, PhaseError) as exc:
            return PhaseStatus(State.FAILED, f"cannot read the backups: {exc.message}")
        limit = allowed_age(self.settings.backup_schedule)
        if newest is None:
            created = (self.ctx.require_kube().get(self.cronjob_ref) or {}).get("metadata", {})
            since = created.get("creationTimestamp")
            if since:
                made = dt.datetime.fromisoformat(str(since).replace("Z", "+00:00"))
                if dt.datetime.now(dt.UTC) - made < limit:
                    return PhaseStatus(
                        State.PROGRESSING,
                        f"no backup yet; the first runs on schedule {self.settings.backup_schedule!r} "
                        "(or now: `tk-devpi backup now`)",
                    )
            return PhaseStatus(State.FAILED, "no complete backup in the object storage")
        age = newest.age()
        text = f"newest backup {newest.id}: {human(age)} old, {size(newest.size)}"
        if age > limit:
            return PhaseStatus(
                State.FAILED,
                f"{text}; older than the schedule allows ({human(limit)})",
                [f"see the last Jobs of CronJob {CRONJOB}: kubectl -n {self.settings.namespace} get jobs"],
            )
        return PhaseStatus(State.HEALTHY, text)
