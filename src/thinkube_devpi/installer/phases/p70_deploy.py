"""Phase 70: GitOps deployment with ArgoCD, then devpi's initialisation.

The root password and the server secret are generated once into Secrets (``devpi-root``,
``devpi-server-secret``) before anything can start devpi, so the server never runs a moment without
them. ArgoCD reads the deployment repository with the read-only key; the Application ``devpi`` is
created once the branch deploys a built image, and the phase waits until ArgoCD reports the pushed
commit (not the previous one) Synced, its operation Succeeded and the app Healthy. Then the Job
``devpi-init`` creates user ``admin`` and index ``admin/prod`` as root (see
:mod:`thinkube_devpi.installer.devpi_init`), reading both passwords from secretKeyRefs.

One thing, so one module past 500 lines: phase 70, the Argo CD deployment and devpi's first users.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from thinkube_devpi.installer import deployrepo
from thinkube_devpi.installer.deployrepo import (
    DeployRepo,
    RepoError,
    RepoState,
    known_host_matches,
    ssh_host,
)
from thinkube_devpi.installer.events import Emit, ObjectApplied, ObjectRef, State, WaitingFor
from thinkube_devpi.installer.kube import KubeError
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
    Derived,
    Desired,
    Generated,
    KeySource,
    Phase,
    PhaseError,
    PhaseStatus,
    SecretObject,
)
from thinkube_devpi.installer.phases.p60_build import BuildPhase, FileKey
from thinkube_devpi.secrets import Secret, SecretError, lookup

APP = "devpi"
APP_API = "argoproj.io/v1alpha1"
REPO_SECRET = "devpi-deployment-repo"
ADMIN_SECRET = "devpi-admin"
INIT_JOB = "devpi-init"
ADMIN_ENV = "DEVPI_ADMIN_PASSWORD"
KNOWN_HOSTS_CM = "argocd-ssh-known-hosts-cm"
REFRESH = "argocd.argoproj.io/refresh"
INPUTS = "thinkube-devpi/init-inputs"


class AdminPassword(KeySource):
    """``DEVPI_ADMIN_PASSWORD``: typed in this session, the environment or the keyring; else kept."""

    describe = f"from {ADMIN_ENV}"

    def resolve(self, existing: str | None, resolved: dict[str, Secret], ctx: Context) -> Secret:
        found = find_admin_password(ctx)
        if found is not None:
            return found
        if existing:
            return Secret(existing, source="kept")
        raise PhaseError(
            f"{ADMIN_ENV} is not set.",
            f"Export {ADMIN_ENV} (or store it in the keyring) with the password for devpi's admin user.",
            setting=ADMIN_ENV,
        )


def find_admin_password(ctx: Context) -> Secret | None:
    if ADMIN_ENV in ctx.session_secrets:
        return ctx.session_secrets[ADMIN_ENV]
    try:
        return lookup(ADMIN_ENV, interactive=False)
    except SecretError:  # a keyring that fails to answer: the environment still counts
        pass
    import os

    value = os.environ.get(ADMIN_ENV)
    return Secret(value, source=f"from {ADMIN_ENV}") if value else None


def application_state(app: dict[str, Any] | None) -> tuple[str, str, str, str, str]:
    """(sync revision, sync status, operation phase, health, message) of an Application."""
    status = (app or {}).get("status") or {}
    sync = status.get("sync") or {}
    op = status.get("operationState") or {}
    health = status.get("health") or {}
    conditions = "; ".join(str(c.get("message", "")) for c in status.get("conditions") or [])
    message = health.get("message") or op.get("message") or conditions or ""
    return (
        str(sync.get("revision") or ""),
        str(sync.get("status") or ""),
        str(op.get("phase") or ""),
        str(health.get("status") or ""),
        str(message),
    )


TRACKING_KEY = "application.resourceTrackingMethod"


def argocd_tracking_method(
    cm: dict[str, Any] | None, kube: Any, namespace: str
) -> tuple[str, str]:
    """(method, why): how the Argo CD in ``namespace`` tells its Application's objects.

    ``argocd-cm`` names it; without the key Argo CD 3.x tracks by annotation and older releases
    by the ``app.kubernetes.io/instance`` label (read from the application controller's image)."""
    chosen = str(((cm or {}).get("data") or {}).get(TRACKING_KEY) or "")
    if chosen:
        return chosen, f"set in {namespace}/argocd-cm"
    version = None
    for api, kind in (("apps/v1", "StatefulSet"), ("apps/v1", "Deployment")):
        try:
            found, _ = kube.list(
                api,
                kind,
                namespace,
                label_selector="app.kubernetes.io/component=application-controller",
            )
        except (KubeError, LookupError):
            continue
        for obj in found:
            for c in obj["spec"]["template"]["spec"].get("containers") or []:
                m = re.search(r":v?(\d+)\.(\d+)", str(c.get("image", "")).rsplit("/", 1)[-1])
                if m:
                    version = (int(m.group(1)), int(m.group(2)))
    if version is None:
        return "unknown", "no argocd-cm setting and no application controller found"
    default = "annotation" if version >= (3, 0) else "label"
    return default, f"Argo CD {version[0]}.{version[1]}'s default"


def job_done(job: dict[str, Any] | None) -> bool:
    status = (job or {}).get("status") or {}
    if status.get("succeeded"):
        return True
    return any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def job_succeeded(job: dict[str, Any] | None) -> bool:
    return bool(((job or {}).get("status") or {}).get("succeeded"))


class DeployPhase(Phase):
    number = 70
    name = "deploy"
    title = "GitOps deployment with ArgoCD"
    summary = (
        "Secrets generated once, ArgoCD Application devpi (prune, self-heal), waits for the pushed "
        "commit Synced and Healthy, then creates the admin user and the prod index as root."
    )

    @property
    def app_ref(self) -> ObjectRef:
        return ObjectRef(APP_API, "Application", APP, self.settings.argocd_namespace)

    @property
    def job_ref(self) -> ObjectRef:
        return ObjectRef("batch/v1", "Job", INIT_JOB, self.settings.namespace)

    def repo(self) -> DeployRepo:
        s = self.settings
        return DeployRepo(
            s.deploy_repo or "",
            s.deploy_branch,
            key_file=s.ssh_readonly_key_file or s.ssh_key_file,
            known_hosts_file=s.ssh_known_hosts_file,
        )

    # -- objects

    def secrets(self) -> list[SecretObject]:
        s = self.settings
        ns = s.namespace
        url = s.deploy_repo or ""
        return [
            SecretObject(deployrepo.ROOT_SECRET, ns, {"password": Generated(32)}),
            # devpi-server wants at least 32 characters and 6 distinct bytes
            SecretObject(deployrepo.SERVER_SECRET, ns, {"secret": Generated(48)}),
            SecretObject(ADMIN_SECRET, ns, {"password": AdminPassword()}),
            SecretObject(
                REPO_SECRET,
                s.argocd_namespace,
                {
                    "type": Derived("git", lambda _: "git"),
                    "url": Derived("deploy_repo", lambda _: url),
                    "sshPrivateKey": FileKey(s.ssh_readonly_key_file, "ssh_readonly_key_file"),
                },
                labels={"argocd.argoproj.io/secret-type": "repository"},
            ),
        ]

    def application(self) -> dict[str, Any]:
        s = self.settings
        obj: dict[str, Any] = {
            "apiVersion": APP_API,
            "kind": "Application",
            "metadata": meta(APP, s.argocd_namespace),
            "spec": {
                "project": "default",
                "source": {
                    "repoURL": s.deploy_repo or "",
                    "targetRevision": s.deploy_branch,
                    "path": "k8s",
                },
                "destination": {
                    "server": "https://kubernetes.default.svc",
                    "namespace": s.namespace,
                },
                "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
            },
        }
        # deleting the Application deletes what it deployed (the PVC is not among them)
        obj["metadata"]["finalizers"] = ["resources-finalizer.argocd.argoproj.io"]
        return obj

    def init_job(self, tag: str) -> dict[str, Any]:
        s = self.settings
        image = f"{deployrepo.image_name(s)}:{tag}"
        inputs = hashlib.sha256(
            f"{image}|{s.devpi_user}|{s.devpi_index}|{self._admin_version()}".encode()
        ).hexdigest()[:16]
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                **meta(INIT_JOB, s.namespace, **applied_labels(INIT_JOB)),
                "annotations": {INPUTS: inputs},
            },
            "spec": {
                "backoffLimit": 6,
                "activeDeadlineSeconds": 900,
                "template": {
                    "metadata": {"labels": selector(INIT_JOB)},
                    "spec": {
                        "restartPolicy": "OnFailure",
                        "automountServiceAccountToken": False,
                        "securityContext": pod_security(deployrepo.UID),
                        "imagePullSecrets": [{"name": deployrepo.PULL_SECRET}],
                        "containers": [
                            {
                                "name": "init",
                                "image": image,
                                "command": ["python3", "/opt/thinkube-devpi/devpi_init.py"],
                                "env": [
                                    {
                                        "name": "DEVPI_URL",
                                        "value": f"http://devpi.{s.namespace}.svc:{deployrepo.PORT}",
                                    },
                                    {"name": "DEVPI_USER", "value": s.devpi_user},
                                    {"name": "DEVPI_INDEX", "value": s.devpi_index},
                                    secret_env(
                                        "DEVPI_ROOT_PASSWORD", deployrepo.ROOT_SECRET, "password"
                                    ),
                                    secret_env("DEVPI_USER_PASSWORD", ADMIN_SECRET, "password"),
                                ],
                                "resources": resources("50m", "64Mi", "500m", "128Mi"),
                                "securityContext": container_security(),
                            }
                        ],
                    },
                },
            },
        }

    def _admin_version(self) -> str:
        kube = self.ctx.kube
        if kube is None:
            return "set at apply"
        live = kube.get(ObjectRef("v1", "Secret", ADMIN_SECRET, self.settings.namespace))
        return str((live or {}).get("metadata", {}).get("resourceVersion", "set at apply"))

    def _live_tag(self) -> str:
        """The tag the live init Job runs, or ``unbuilt`` (status and plan read no git)."""
        kube = self.ctx.kube
        live = kube.get(self.job_ref) if kube is not None else None
        try:
            image = live["spec"]["template"]["spec"]["containers"][0]["image"]  # type: ignore[index]
            return str(image).rsplit(":", 1)[1]
        except (TypeError, KeyError, IndexError):
            return deployrepo.UNBUILT

    def objects(self) -> list[Desired]:
        return [*self.secrets(), self.application(), self.init_job(self._live_tag())]

    # -- checks

    def preflight(self) -> None:
        s = self.settings
        for field in ("deploy_repo", "ssh_readonly_key_file", "ssh_known_hosts_file"):
            if not getattr(s, field):
                raise PhaseError(
                    f"{field} is not set: ArgoCD reads the deployment repository with the "
                    "read-only deploy key and pinned host keys.",
                    "Set it with `tk-devpi config init`.",
                    setting=field,
                )
        kube = self.ctx.require_kube()
        if not kube.has_kind(APP_API, "Application"):
            raise PhaseError(
                "The cluster does not serve argoproj.io/v1alpha1 Application.",
                "Install ArgoCD (or check argocd_namespace).",
            )
        host = ssh_host(s.deploy_repo or "")
        cm = kube.get(ObjectRef("v1", "ConfigMap", KNOWN_HOSTS_CM, s.argocd_namespace))
        known = str(((cm or {}).get("data") or {}).get("ssh_known_hosts", ""))
        if not any(known_host_matches(line, host) for line in known.splitlines()):
            lines = [
                line
                for line in Path(s.ssh_known_hosts_file or "").read_text().splitlines()
                if known_host_matches(line, host)
            ]
            raise PhaseError(
                f"ArgoCD does not know {host}'s host key (ConfigMap {s.argocd_namespace}/"
                f"{KNOWN_HOSTS_CM}); it would refuse the repository, and its key is never skipped.",
                "Add these lines to its ssh_known_hosts (argocd cert add-ssh --batch, or edit the "
                "ConfigMap): " + " | ".join(lines),
            )
        if find_admin_password(self.ctx) is None:
            live = kube.get(ObjectRef("v1", "Secret", ADMIN_SECRET, s.namespace))
            if not live:
                raise PhaseError(
                    f"{ADMIN_ENV} is not set.",
                    f"Export {ADMIN_ENV} (or store it in the keyring) with the password for "
                    "devpi's admin user.",
                    setting=ADMIN_ENV,
                )

    # -- apply

    def apply(self, emit: Emit) -> None:
        self.preflight()
        try:
            state = self.repo().read_state()
        except RepoError as exc:
            raise PhaseError(exc.message, exc.hint) from None
        if deployrepo.built_commit(state.tag) is None:
            raise PhaseError(
                f"Branch {self.settings.deploy_branch} deploys no built image yet "
                f"(image tag {state.tag!r}).",
                "Apply phase 60 (build) first; the Application is created once a build pushed its tag.",
            )
        self.log(
            emit,
            f"branch {self.settings.deploy_branch} at {state.head[:7]} deploys image {state.tag}",
        )
        objs: list[dict[str, Any] | SecretObject] = [*self.secrets(), self.application()]
        for obj in objs:
            result = self.apply_one(obj)
            emit(ObjectApplied(self.name, result.ref, result.outcome))
        self.wait_synced(emit, state)
        self.run_init(emit, state)

    def wait_synced(self, emit: Emit, state: RepoState) -> dict[str, Any]:
        kube = self.ctx.require_kube()
        current = application_state(kube.get(self.app_ref))
        if current[0] != state.head:
            # ask ArgoCD to look at the repository now; a separate merge patch, never in the
            # applied body (the controller removes it again, which would make every apply a write)
            kube.merge_patch(self.app_ref, {"metadata": {"annotations": {REFRESH: "normal"}}})
        seen: list[tuple[str, ...]] = []

        def progress(app: dict[str, Any] | None) -> None:
            rev, sync, op, health, _ = application_state(app)
            now = (rev[:7], sync, op, health)
            if not seen or seen[-1] != now:
                seen.append(now)
                self.log(
                    emit,
                    f"Application {APP}: revision {rev[:7] or '-'} {sync or 'Unknown'}, "
                    f"operation {op or '-'}, health {health or 'Unknown'}",
                )

        later: dict[str, bool] = {}

        def at_or_after_push(rev: str) -> bool:
            # the monitor may have pushed another tag bump on top of ours meanwhile: a
            # descendant of the pushed commit carries it too
            if rev not in later:
                try:
                    later[rev] = bool(rev) and self.repo().descends_from(rev, state.head)
                except RepoError:
                    later[rev] = False
            return later[rev]

        def settled(app: dict[str, Any] | None) -> bool:
            rev, sync, op, health, _ = application_state(app)
            if rev != state.head and not at_or_after_push(rev):
                return False  # ArgoCD still shows the previous commit
            if health == "Degraded" or op in ("Failed", "Error"):
                return True
            return sync == "Synced" and op == "Succeeded" and health == "Healthy"

        what = f"Application {APP} to sync {state.head[:7]} and become Healthy"
        emit(WaitingFor(self.name, what, self.ctx.wait_timeout))
        app = kube.wait_until(
            self.app_ref,
            settled,
            what=what,
            timeout=self.ctx.wait_timeout,
            cancel=self.ctx.cancel,
            on_change=progress,
        )
        rev, _, op, health, message = application_state(app)
        if rev != state.head:
            self.log(emit, f"Application {APP} synced {rev[:7]}, made on top of {state.head[:7]}")
        if health == "Degraded" or op in ("Failed", "Error"):
            raise PhaseError(
                f"Application {APP} is {health or op} at {rev[:7]}: {message or 'no message'}",
                f"See `argocd app get {APP}` or the devpi pods in namespace {self.settings.namespace}.",
            )
        return app or {}

    def run_init(self, emit: Emit, state: RepoState) -> None:
        kube = self.ctx.require_kube()
        job = self.init_job(state.tag)
        live = kube.get(self.job_ref)
        if live is not None:
            old = (live["metadata"].get("annotations") or {}).get(INPUTS)
            if old != job["metadata"]["annotations"][INPUTS]:
                # a Job's pod template cannot change: a new image or password runs a new Job
                kube.delete(self.job_ref, propagation="Foreground")
                self.wait_for(
                    emit, self.job_ref, lambda o: o is None, f"{self.job_ref} to be replaced"
                )
        result = self.apply_one(job)
        emit(ObjectApplied(self.name, result.ref, result.outcome))
        done = self.wait_for(emit, self.job_ref, job_done, f"{self.job_ref} to initialise devpi")
        if not job_succeeded(done):
            raise PhaseError(
                f"{self.job_ref} failed: {self._job_log()}",
                "Check the devpi pods and the devpi-root Secret; a re-run runs the Job again.",
            )
        self.log(
            emit,
            f"devpi initialised: user {self.settings.devpi_user}, index {self.settings.prod_index}",
        )

    def _job_log(self) -> str:
        kube = self.ctx.require_kube()
        try:
            pods, _ = kube.list(
                "v1", "Pod", self.settings.namespace, label_selector=f"job-name={INIT_JOB}"
            )
            if not pods:
                return "no pod left to read a log from"
            last = max(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""))
            lines = list(
                kube.pod_log(self.settings.namespace, last["metadata"]["name"], tail_lines=5)
            )
        except KubeError as exc:
            return f"its log is unavailable ({exc.reason or exc})"
        return " | ".join(line for line in lines if line.strip()) or "empty log"

    # -- status

    def health(self) -> PhaseStatus:
        kube = self.ctx.require_kube()
        rev, sync, _, health, message = application_state(kube.get(self.app_ref))
        if health == "Degraded":
            return PhaseStatus(State.FAILED, f"Application {APP} Degraded: {message}")
        if not (sync == "Synced" and health == "Healthy"):
            return PhaseStatus(
                State.PROGRESSING, f"Application {APP}: {sync or 'Unknown'}, {health or 'Unknown'}"
            )
        if not job_succeeded(kube.get(self.job_ref)):
            return PhaseStatus(State.PROGRESSING, f"{INIT_JOB} has not succeeded")
        return PhaseStatus(
            State.HEALTHY, f"Application {APP} Synced at {rev[:7]}, Healthy; devpi initialised"
        )

    # -- rollback

    def rollback(self, emit: Emit) -> None:
        """Builds stop first, then the Application (waiting until it is gone), Job and Secrets.

        The root password and the server secret stay with the package data (the server directory
        was initialised with them) unless the admin deletes the package data."""
        BuildPhase(self.ctx).stop_builds(emit)
        self.delete_objects([self.application()], emit)
        self.wait_for(emit, self.app_ref, lambda o: o is None, f"Application {APP} to be gone")
        self.delete_objects(
            [self.init_job(deployrepo.UNBUILT), *reversed(self.secrets())],
            emit,
            keep=self.keep_reason,
        )

    def keep_reason(self, ref: ObjectRef) -> str:
        keep_data = self.ctx.delete_package_data != self.settings.namespace
        if keep_data and ref.name in (deployrepo.ROOT_SECRET, deployrepo.SERVER_SECRET):
            return "kept with the package data (the server directory was initialised with it)"
        return ""
