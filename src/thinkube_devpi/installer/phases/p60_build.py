"""Phase 60: the deployment repository, and the image build with Argo Workflows and Kaniko.

First the repository: with a GitHub token, the repository is created (private) if missing and both
deploy keys are registered; then the installer renders its files and pushes when they changed
(see :mod:`thinkube_devpi.installer.deployrepo`).

Then, in the Argo namespace: registry credentials as Kaniko's ``config.json``, the SSH key Secret
with pinned known hosts, a pull secret for the devpi namespace, the WorkflowTemplate
``devpi-build`` and the CronWorkflow ``devpi-repo-monitor``. When the source moved since the image
the branch deploys, the phase submits one Workflow and follows it live, build log included.

The Argo objects are in :mod:`thinkube_devpi.installer.argo_build`, the build log's following
and redaction in :mod:`thinkube_devpi.installer.buildlog`.

One thing, so one module past 500 lines: phase 60, as DESIGN.md's row says it (repository, then build).
"""

from __future__ import annotations

import base64
import json
import queue
import threading
from pathlib import Path
from typing import Any

from thinkube_devpi.installer.argo_build import (
    BUILD_LABEL,
    CONTROLLER_LABEL,
    FINISHED,
    MONITOR,
    PULL_SECRET,
    REGISTRY_SECRET,
    SOURCE_LABEL,
    SSH_SECRET,
    TEMPLATE,
    argo_version_from_image,
    build_workflow,
    cron_workflow,
    failing_step,
    workflow_template,
)
from thinkube_devpi.installer.buildlog import Redactor, follow_build_logs
from thinkube_devpi.installer.deployrepo import (
    DeployRepo,
    RepoError,
    RepoState,
    known_host_matches,
    ssh_host,
)
from thinkube_devpi.installer.events import Emit, ObjectDeleted, ObjectRef, State
from thinkube_devpi.installer.github import GitHub, GitHubError, github_repo, public_key
from thinkube_devpi.installer.kube import KubeError
from thinkube_devpi.installer.phases.base import (
    Context,
    Desired,
    KeySource,
    Phase,
    PhaseError,
    PhaseStatus,
    RollbackPreview,
    SecretObject,
)
from thinkube_devpi.secrets import Secret

# ---------------------------------------------------------------- secret values


class FileKey(KeySource):
    """A value read from a file at apply time (a key, known hosts, a token)."""

    def __init__(self, path: str | None, setting: str) -> None:
        self.path = path
        self.setting = setting
        self.describe = f"from {setting}"

    def resolve(self, existing: str | None, resolved: dict[str, Secret], ctx: Context) -> Secret:
        if not self.path:
            # preflight refuses to apply without it; an empty value is no credential at all
            return Secret("", source=f"{self.setting} not set")
        try:
            return Secret(Path(self.path).read_text(), source=self.describe)
        except OSError as exc:
            raise PhaseError(f"{self.setting}: cannot read {self.path} ({exc.strerror}).") from None


class DockerConfig(KeySource):
    """A registry's ``.dockerconfigjson``: from an existing Secret, or a user and a token file.

    ``pull``: the pull-only credential the devpi namespace gets (``registry_pull_*``), never the
    build's push credential."""

    def __init__(self, settings: Any, *, pull: bool = False) -> None:
        self.settings = settings
        prefix = "registry_pull" if pull else "registry"
        self.secret_field, self.user_field, self.token_field = (
            f"{prefix}_secret",
            f"{prefix}_user",
            f"{prefix}_token_file",
        )
        self.rights = "pull" if pull else "push"
        self.describe = (
            f"from Secret {getattr(settings, self.secret_field)}"
            if getattr(settings, self.secret_field)
            else f"from {self.user_field} and {self.token_field}"
        )

    def configured(self) -> bool:
        s = self.settings
        return bool(
            getattr(s, self.secret_field)
            or (getattr(s, self.user_field) and getattr(s, self.token_field))
        )

    def resolve(self, existing: str | None, resolved: dict[str, Secret], ctx: Context) -> Secret:
        s = self.settings
        ref = getattr(s, self.secret_field)
        if ref:
            ns, _, name = ref.partition("/")
            live = ctx.require_kube().get(ObjectRef("v1", "Secret", name, ns))
            raw = ((live or {}).get("data") or {}).get(".dockerconfigjson")
            if not raw:
                raise PhaseError(
                    f"{self.secret_field}: Secret {ref} is missing or has no "
                    ".dockerconfigjson key.",
                    f"Name a kubernetes.io/dockerconfigjson Secret with {self.rights} rights.",
                )
            return Secret(base64.b64decode(raw).decode(), source=self.describe)
        user, token_file = getattr(s, self.user_field), getattr(s, self.token_field)
        if not (user and token_file):
            # preflight refuses to apply without credentials; no auths is no credential at all
            return Secret(json.dumps({"auths": {}}), source="registry credentials not set")
        token = FileKey(token_file, self.token_field).resolve(None, resolved, ctx)
        auth = base64.b64encode(f"{user}:{token.reveal().strip()}".encode()).decode()
        return Secret(
            json.dumps({"auths": {s.registry_host: {"auth": auth}}}), source=self.describe
        )


# ---------------------------------------------------------------- the phase


class BuildPhase(Phase):
    number = 60
    name = "build"
    title = "Deployment repository and image build"
    summary = (
        "Renders and pushes the deployment repository, then builds the image with Kaniko through "
        "Argo Workflows; a CronWorkflow rebuilds when the source moves."
    )

    @property
    def argo(self) -> str:
        return self.settings.argo_namespace

    def repo(self) -> DeployRepo:
        s = self.settings
        return DeployRepo(
            s.deploy_repo or "",
            s.deploy_branch,
            key_file=s.ssh_key_file,
            known_hosts_file=s.ssh_known_hosts_file,
        )

    def secrets(self) -> list[SecretObject]:
        s = self.settings
        docker = DockerConfig(s)
        return [
            SecretObject(
                SSH_SECRET,
                self.argo,
                {
                    "ssh-privatekey": FileKey(s.ssh_key_file, "ssh_key_file"),
                    "known_hosts": FileKey(s.ssh_known_hosts_file, "ssh_known_hosts_file"),
                },
            ),
            SecretObject(
                REGISTRY_SECRET,
                self.argo,
                {".dockerconfigjson": docker},
                type="kubernetes.io/dockerconfigjson",
            ),
            *self.pull_secrets(),
        ]

    def pull_secrets(self) -> list[SecretObject]:
        """devpi's namespace gets a pull-only credential, or none (an anonymous pull): the
        push credential stays in the build namespace."""
        pull = DockerConfig(self.settings, pull=True)
        if not pull.configured():
            return []
        return [
            SecretObject(
                PULL_SECRET,
                self.settings.namespace,
                {".dockerconfigjson": pull},
                type="kubernetes.io/dockerconfigjson",
            )
        ]

    def uses_schedules(self) -> bool:
        """``schedules`` unless the Argo controller is older than 3.6 (read from its image)."""
        kube = self.ctx.kube
        if kube is None:
            return True
        dep = self.controller()
        for c in ((((dep or {}).get("spec") or {}).get("template") or {}).get("spec") or {}).get(
            "containers"
        ) or []:
            version = argo_version_from_image(str(c.get("image", "")))
            if version is not None:
                return version >= (3, 6)
        return True

    def controller(self) -> dict[str, Any] | None:
        """Argo's workflow controller Deployment, found by its component label (the Helm chart
        names it ``<release>-workflow-controller``, thinkube's ``argo-workflows-...``)."""
        kube = self.ctx.kube
        if kube is None:
            return None
        try:
            found, _ = kube.list(
                "apps/v1",
                "Deployment",
                self.argo,
                label_selector=f"{CONTROLLER_LABEL}=workflow-controller",
            )
            if not found:  # manifests without the label: the plain install's name
                ref = ObjectRef("apps/v1", "Deployment", "workflow-controller", self.argo)
                live = kube.get(ref)
                found = [live] if live else []
        except KubeError:
            return None
        return found[0] if found else None

    def objects(self) -> list[Desired]:
        return [
            *self.secrets(),
            workflow_template(self.settings),
            cron_workflow(self.settings, schedules=self.uses_schedules()),
        ]

    # -- checks

    def preflight(self) -> None:
        s = self.settings
        if not s.deploy_repo:
            raise PhaseError(
                "deploy_repo is not set: the build needs the deployment repository.",
                "An SSH URL such as git@github.com:org/devpi-deployment.git (set it with "
                "`tk-devpi config init`).",
                setting="deploy_repo",
            )
        for field in ("ssh_key_file", "ssh_known_hosts_file"):
            if not getattr(s, field):
                raise PhaseError(
                    f"{field} is not set.",
                    "The build pushes with the read-write deploy key and checks the host's key "
                    "against pinned known hosts (ssh-keyscan the host once and compare the "
                    "fingerprints with the ones it publishes).",
                    setting=field,
                )
        host = ssh_host(s.deploy_repo)
        known = Path(s.ssh_known_hosts_file or "").read_text()
        if not any(known_host_matches(line, host) for line in known.splitlines()):
            raise PhaseError(
                f"ssh_known_hosts_file has no key for {host}.",
                f"Add {host}'s published host key lines to {s.ssh_known_hosts_file}.",
            )
        if not s.registry_secret and not (s.registry_user and s.registry_token_file):
            raise PhaseError(
                "No registry credentials: Kaniko cannot push the image.",
                "Set registry_secret (an existing dockerconfigjson Secret, namespace/name), or "
                "registry_user and registry_token_file.",
            )
        kube = self.ctx.require_kube()
        for kind in ("WorkflowTemplate", "CronWorkflow", "Workflow"):
            if not kube.has_kind("argoproj.io/v1alpha1", kind):
                raise PhaseError(
                    f"The cluster does not serve argoproj.io/v1alpha1 {kind}.",
                    "Install Argo Workflows (or check argo_namespace).",
                )

    # -- apply

    def apply(self, emit: Emit) -> None:
        self.preflight()
        self.ensure_github(emit)
        state = self.sync_repo(emit)
        super().apply(emit)  # Secrets, WorkflowTemplate, CronWorkflow
        if not self.pull_secrets():
            self.log(
                emit,
                f"no registry_pull_secret or registry_pull_user: namespace {self.settings.namespace} "
                "gets no registry credential, so the image must be pullable anonymously (a "
                "public project); the push credential never leaves the build namespace",
                "warning",
            )
        if not state.needs_build:
            self.log(
                emit,
                f"image {state.tag} is built from source commit {state.source[:7]}: no build needed",
            )
            return
        self.build(emit, state.source)

    def ensure_github(self, emit: Emit) -> None:
        s = self.settings
        where = github_repo(s.deploy_repo or "")
        if not s.github_token_file:
            self.log(
                emit,
                "no github_token_file: make sure the repository exists and carries the read-write "
                "deploy key (ssh_key_file's .pub) and the read-only one (ssh_readonly_key_file's)",
            )
            return
        if where is None:
            self.log(
                emit,
                f"{s.deploy_repo} is not on github.com: create it and its deploy keys yourself",
            )
            return
        owner, name = where
        token = Secret(Path(s.github_token_file).read_text().strip(), source="github_token_file")
        api = GitHub(token, s.github_api_url)
        try:
            self.log(emit, f"GitHub repository {owner}/{name}: {api.ensure_repo(owner, name)}")
            for key_file, title, read_only in (
                (s.ssh_key_file, "thinkube-devpi build (read-write)", False),
                (s.ssh_readonly_key_file, "thinkube-devpi ArgoCD (read-only)", True),
            ):
                if key_file:
                    outcome = api.ensure_deploy_key(
                        owner, name, title, public_key(key_file), read_only=read_only
                    )
                    self.log(emit, f"deploy key {title!r}: {outcome}")
        except GitHubError as exc:
            raise PhaseError(exc.message, exc.hint) from None

    def sync_repo(self, emit: Emit) -> RepoState:
        self.log(emit, f"rendering {self.settings.deploy_repo} ({self.settings.deploy_branch})")
        try:
            state = self.repo().sync(self.settings)
        except RepoError as exc:
            raise PhaseError(exc.message, exc.hint) from None
        if state.committed:
            self.log(emit, f"pushed {state.head[:7]}: {', '.join(state.changed)}")
        else:
            self.log(emit, f"repository unchanged at {state.head[:7]}")
        return state

    def running_build(self, source: str) -> dict[str, Any] | None:
        """An installer build of ``source`` that has not finished (an interrupted run's)."""
        if not source:
            return None
        runs, _ = self.ctx.require_kube().list(
            "argoproj.io/v1alpha1",
            "Workflow",
            self.argo,
            label_selector=f"{BUILD_LABEL}=installer,{SOURCE_LABEL}={source[:40]}",
        )
        running = [w for w in runs if ((w.get("status") or {}).get("phase")) not in FINISHED]
        return max(running, key=lambda w: w["metadata"].get("creationTimestamp", ""), default=None)

    def build(self, emit: Emit, source: str = "") -> dict[str, Any]:
        kube = self.ctx.require_kube()
        wf = self.running_build(source)
        if wf is not None:
            self.log(
                emit,
                f"following Workflow {self.argo}/{wf['metadata']['name']}: it is already "
                f"building {source[:7]} (not submitting a second build)",
            )
        else:
            body = build_workflow(self.settings, source)
            try:
                wf = kube.create(body)  # sent once: a create is never retried
            except KubeError as exc:
                # the answer was lost (reset, timeout): the Workflow may exist all the same
                landed = kube.get(ObjectRef.of(body)) if exc.transient else None
                if landed is None:
                    raise
                wf = landed
            self.log(emit, f"submitted Workflow {self.argo}/{wf['metadata']['name']}")
        name = wf["metadata"]["name"]
        ref = ObjectRef("argoproj.io/v1alpha1", "Workflow", name, self.argo)
        changed: queue.SimpleQueue[None] = queue.SimpleQueue()  # a step started or ended
        done = threading.Event()  # the workflow finished: stream what is left, then stop
        stop_logs = threading.Event()  # stop a log stream too (cancel, or it outlived the run)
        follower = threading.Thread(
            target=self._follow_logs,
            args=(name, emit, done, stop_logs, changed),
            daemon=True,
            name="build-log",
        )
        follower.start()
        seen: dict[str, str] = {}

        def progress(obj: dict[str, Any] | None) -> None:
            for node in ((obj or {}).get("status") or {}).get("nodes", {}).values():
                if node.get("type") != "Pod":
                    continue
                key, phase = str(node.get("displayName")), str(node.get("phase"))
                if seen.get(key) != phase:
                    seen[key] = phase
                    self.log(emit, f"step {key}: {phase}")
                    changed.put(None)

        try:
            final = kube.wait_until(
                ref,
                lambda o: ((o or {}).get("status") or {}).get("phase") in FINISHED,
                what=f"Workflow {name} to finish",
                timeout=self.ctx.wait_timeout,
                cancel=self.ctx.cancel,
                on_change=progress,
            )
        finally:
            done.set()
            changed.put(None)
            if self.ctx.cancel.is_set():
                stop_logs.set()
            # the pods stay after the run (podGC waits), so what is left is read to the end; a
            # finished pod's log stream ends by itself, the bound is for a stuck connection
            follower.join(timeout=30)
            stop_logs.set()
            follower.join(timeout=2)
        phase = ((final or {}).get("status") or {}).get("phase")
        if phase != "Succeeded":
            raise PhaseError(
                f"Build Workflow {self.argo}/{name} {phase}: {failing_step(final or {})}",
                f"See its log above or `argo logs -n {self.argo} {name}`; fix and re-run.",
            )
        self.log(emit, f"Workflow {name} succeeded")
        return final or {}

    def _redactor(self) -> Redactor:
        values = []
        for obj in self.secrets():
            for source in obj.keys.values():
                try:
                    value = source.resolve(None, {}, self.ctx).reveal()
                except (PhaseError, KubeError, OSError):
                    continue
                values.append(value)
                try:
                    values += [v["auth"] for v in json.loads(value).get("auths", {}).values()]
                    values += [
                        base64.b64decode(v["auth"]).decode().split(":", 1)[1]
                        for v in json.loads(value).get("auths", {}).values()
                    ]
                except (ValueError, KeyError, AttributeError, IndexError):
                    pass
                values += [line for line in value.splitlines() if len(line) > 16]
        return Redactor(values)

    def _follow_logs(
        self,
        workflow: str,
        emit: Emit,
        done: threading.Event,
        stop_logs: threading.Event,
        changed: queue.SimpleQueue[None],
    ) -> None:
        follow_build_logs(
            self.ctx.require_kube(),
            self.argo,
            workflow,
            lambda text, level="info": self.log(emit, text, level),
            self._redactor(),
            done=done,
            stop_logs=stop_logs,
            changed=changed,
        )

    # -- status

    def health(self) -> PhaseStatus:
        kube = self.ctx.require_kube()
        runs, _ = kube.list(
            "argoproj.io/v1alpha1",
            "Workflow",
            self.argo,
            label_selector="workflows.argoproj.io/workflow-template=devpi-build",
        )
        mine, _ = kube.list(
            "argoproj.io/v1alpha1", "Workflow", self.argo, label_selector=BUILD_LABEL
        )
        by_name = {w["metadata"]["name"]: w for w in [*runs, *mine]}
        if not by_name:
            # after a rollback (which deletes the runs) a re-install needs no build when the
            # branch already deploys an image of its current source
            try:
                state = self.repo().read_state()
            except RepoError:
                state = None
            if state is not None and not state.needs_build:
                return PhaseStatus(
                    State.HEALTHY, f"image {state.tag} is built from the current source"
                )
            return PhaseStatus(State.PROGRESSING, "no build has run yet")
        last = max(by_name.values(), key=lambda w: w["metadata"].get("creationTimestamp", ""))
        phase = (last.get("status") or {}).get("phase") or "Pending"
        name = last["metadata"]["name"]
        if phase == "Succeeded":
            return PhaseStatus(State.HEALTHY, f"last build {name} succeeded")
        if phase in ("Failed", "Error"):
            return PhaseStatus(State.FAILED, f"last build {name}: {failing_step(last)}")
        return PhaseStatus(State.PROGRESSING, f"build {name} is {phase}")

    # -- rollback

    def stop_builds(self, emit: Emit, *, finished_too: bool = False) -> None:
        """The CronWorkflow first (no new runs), then every running build (and, on this phase's
        own rollback, the finished runs too: their pods and logs go with them)."""
        kube = self.ctx.require_kube()
        self.delete_objects([cron_workflow(self.settings)], emit)
        runs, _ = kube.list("argoproj.io/v1alpha1", "Workflow", self.argo)
        for wf in runs:
            labels = wf["metadata"].get("labels") or {}
            ours = (
                labels.get("workflows.argoproj.io/workflow-template") == TEMPLATE
                or BUILD_LABEL in labels
                or labels.get("workflows.argoproj.io/cron-workflow") == MONITOR
            )
            if not ours:
                continue
            if (wf.get("status") or {}).get("phase") not in FINISHED:
                kube.delete(ObjectRef.of(wf))
                self.log(emit, f"stopped running Workflow {wf['metadata']['name']}")
            elif finished_too:
                kube.delete(ObjectRef.of(wf))
                emit(ObjectDeleted(self.name, ObjectRef.of(wf), "deleted"))

    def rollback_preview(self) -> RollbackPreview:
        preview = super().rollback_preview()
        preview.deletes.append(f"every build Workflow of {TEMPLATE} in {self.argo}, with its logs")
        preview.keeps.append((f"the deployment repository {self.settings.deploy_repo}", "on the host"))
        return preview

    def rollback(self, emit: Emit) -> None:
        """CronWorkflow, running Workflows, finished runs, WorkflowTemplate, Secrets; the
        repository stays."""
        self.stop_builds(emit, finished_too=True)
        self.delete_objects([workflow_template(self.settings), *reversed(self.secrets())], emit)
        self.log(
            emit,
            f"the deployment repository {self.settings.deploy_repo} is left as it is "
            "(delete it on the host if you no longer want it)",
        )
