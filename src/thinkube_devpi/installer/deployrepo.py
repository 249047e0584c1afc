"""The DevPi deployment repository: its content rendered from Python data, and git.

The installer owns every file here except the image tag in ``k8s/kustomization.yaml``: the build
(Argo Workflows, phase 60) bumps that tag, and each render reads it back from the branch and keeps
it. A render commits only when some file changed, and pushes with the configured read-write key
through ``GIT_SSH_COMMAND`` made of file paths (no key material in any argv) and a pinned
known-hosts file (``StrictHostKeyChecking=yes``, never ``no``).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from thinkube_devpi._lazy import lazy_import
from thinkube_devpi.errors import Error
from thinkube_devpi.installer.manifests import (
    container_security,
    meta,
    pod_security,
    secret_env,
    selector,
)
from thinkube_devpi.installer.manifests import deployment as manifest_deployment
from thinkube_devpi.installer.manifests import resources as resource_limits
from thinkube_devpi.secrets import child_environ

if TYPE_CHECKING:
    import yaml

    from thinkube_devpi.config import Settings
else:
    yaml = lazy_import("yaml")  # only rendering and reading YAML needs it

# Pinned versions of what the image is made of.
PYTHON_VERSION = "3.12.11"
DEVPI_SERVER = "6.20.3"
DEVPI_WEB = "5.1.1"
DEVPI_CLIENT = "7.3.0"
BOTO3 = "1.43.11"  # the backup program's S3 client (phase 75)
UID = 10001
PORT = 3141

NAME = "devpi"
PVC = "devpi-data-pvc"
ROOT_SECRET = "devpi-root"
SERVER_SECRET = "devpi-server-secret"
PULL_SECRET = "devpi-registry-pull"
BUMP_TRAILER = "Thinkube-Devpi-Build: tag-bump"
RENDER_TRAILER = "Thinkube-Devpi-Render: installer"
UNBUILT = "unbuilt"
TAG_RE = re.compile(r"^\d{8}T\d{6}-[0-9a-f]{7}$")
OWNED = (
    "README.md",
    "Dockerfile",
    "entrypoint.sh",
    "devpi_init.py",
    "devpi_server_launch.py",
    "devpi_backup.py",
    "k8s/kustomization.yaml",
    "k8s/deployment.yaml",
    "k8s/service.yaml",
)


class RepoError(Error):
    """A git operation on the deployment repository failed; the message says what to do."""


def template(name: str) -> str:
    return resources.files("thinkube_devpi.installer").joinpath("templates", name).read_text()


def image_name(settings: Settings) -> str:
    """The image without its tag: ``<registry>/<project>/devpi``."""
    return f"{settings.registry_host}/{settings.registry_project}/{NAME}"


# ---------------------------------------------------------------- rendering


def _dump(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False)


def deployment(settings: Settings) -> dict[str, Any]:
    ns = settings.namespace
    probe = {"httpGet": {"path": "/+api", "port": "http"}}
    pod_spec = {
        "serviceAccountName": "devpi",
        "automountServiceAccountToken": False,
        "securityContext": pod_security(UID, fs_group=UID),
        "imagePullSecrets": [{"name": PULL_SECRET}],
        "containers": [
            {
                "name": "devpi",
                # kustomize sets the tag (k8s/kustomization.yaml images)
                "image": image_name(settings),
                "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
                "env": [
                    secret_env("DEVPISERVER_ROOT_PASSWD", ROOT_SECRET, "password"),
                    # devpi's links follow the request's host, one of these (the first otherwise)
                    {
                        "name": "DEVPI_OUTSIDE_HOSTS",
                        "value": f"{settings.api},{settings.dashboard}",
                    },
                    {
                        "name": "DEVPI_SECRET_SOURCE",
                        "value": "/run/secrets/devpi-server/secret",
                    },
                ],
                "startupProbe": {**probe, "periodSeconds": 5, "failureThreshold": 60},
                "readinessProbe": {**probe, "periodSeconds": 10, "timeoutSeconds": 5},
                "livenessProbe": {
                    **probe,
                    "periodSeconds": 20,
                    "timeoutSeconds": 10,
                    "failureThreshold": 6,
                },
                # about 1 Gi in use, up to 4 Gi while devpi-web indexes
                "resources": resource_limits("100m", "1Gi", "2", "4Gi"),
                "securityContext": container_security(),
                "volumeMounts": [
                    {"name": "data", "mountPath": "/data"},
                    {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 (in the pod)
                    {
                        "name": "server-secret",
                        "mountPath": "/run/secrets/devpi-server",
                        "readOnly": True,
                    },
                ],
            }
        ],
        "volumes": [
            {"name": "data", "persistentVolumeClaim": {"claimName": PVC}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
            {
                "name": "server-secret",
                "secret": {
                    "secretName": SERVER_SECRET,
                    "items": [{"key": "secret", "path": "secret"}],
                    "defaultMode": 0o400,
                },
            },
        ],
    }
    # one writer on a ReadWriteOnce volume: never two pods at once
    return manifest_deployment(NAME, ns, pod_spec, recreate=True, labels=selector(NAME))


def service(settings: Settings) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(NAME, settings.namespace, **selector(NAME)),
        "spec": {
            "selector": selector(NAME),
            "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def kustomization(settings: Settings, tag: str) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": settings.namespace,
        "labels": [
            {
                "pairs": {
                    "app.kubernetes.io/part-of": "thinkube-devpi",
                    "app.kubernetes.io/managed-by": "thinkube-devpi",
                },
                "includeSelectors": False,
            }
        ],
        "resources": ["deployment.yaml", "service.yaml"],
        # the build bumps newTag (and only that line); the installer keeps it
        "images": [{"name": image_name(settings), "newTag": tag}],
    }


def readme(settings: Settings) -> str:
    return f"""# DevPi deployment

Managed by [thinkube-devpi](https://github.com/thinkube): every file here is rendered by the
installer (`tk-devpi install apply`), and edits are overwritten by its next run. The one exception
is the image tag in `k8s/kustomization.yaml`: the build (Argo WorkflowTemplate `devpi-build` in
namespace `{settings.argo_namespace}`) sets it after pushing `{image_name(settings)}:<UTC time>-<commit>`,
and the installer keeps it.

ArgoCD (Application `devpi` in `{settings.argocd_namespace}`) deploys `k8s/` into namespace
`{settings.namespace}`. A commit that changes the image's source (anything but a tag bump) is built
by the CronWorkflow `devpi-repo-monitor`.
"""


def devpi_init_source() -> str:
    return resources.files("thinkube_devpi.installer").joinpath("devpi_init.py").read_text()


def backup_program_source() -> str:
    return resources.files("thinkube_devpi.installer").joinpath("backup", "core.py").read_text()


def render_files(settings: Settings, tag: str = UNBUILT) -> dict[str, str]:
    """Every file the installer owns, by path, for the given image tag."""
    dockerfile = template("Dockerfile").format(
        python_version=PYTHON_VERSION,
        devpi_server=DEVPI_SERVER,
        devpi_web=DEVPI_WEB,
        devpi_client=DEVPI_CLIENT,
        boto3=BOTO3,
        uid=UID,
        port=PORT,
    )
    return {
        "README.md": readme(settings),
        "Dockerfile": dockerfile,
        "entrypoint.sh": template("entrypoint.sh"),
        "devpi_init.py": devpi_init_source(),
        "devpi_server_launch.py": template("devpi_server_launch.py"),
        # the backup program runs beside the live server, so it ships in the server's own image
        "devpi_backup.py": backup_program_source(),
        "k8s/kustomization.yaml": _dump(kustomization(settings, tag)),
        "k8s/deployment.yaml": _dump(deployment(settings)),
        "k8s/service.yaml": _dump(service(settings)),
    }


def read_tag(text: str | None) -> str:
    """The image tag a kustomization.yaml deploys (``unbuilt`` when none)."""
    if not text:
        return UNBUILT
    try:
        data = yaml.safe_load(text) or {}
        images = data.get("images") or []
        tag = str(images[0].get("newTag") or UNBUILT) if images else UNBUILT
    except (yaml.YAMLError, AttributeError, IndexError, TypeError):
        return UNBUILT
    return tag if re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", tag) else UNBUILT


def built_commit(tag: str) -> str | None:
    """The short commit a tag was built from (``<UTC time>-<sha7>``), or None."""
    return tag.rsplit("-", 1)[1] if TAG_RE.fullmatch(tag) else None


# ---------------------------------------------------------------- git


@dataclass
class RepoState:
    head: str  # the branch's commit after the sync
    source: str  # the newest commit that is not a tag bump
    tag: str  # the image tag the branch deploys (UNBUILT when none)
    committed: bool  # this sync pushed a commit
    changed: tuple[str, ...] = ()

    @property
    def needs_build(self) -> bool:
        return built_commit(self.tag) != self.source[:7]


def ssh_command(key_file: str | None, known_hosts_file: str | None) -> str:
    """``GIT_SSH_COMMAND`` from file paths only; host keys are pinned, never accepted blindly."""
    parts = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
    if key_file:
        parts += ["-i", key_file, "-o", "IdentitiesOnly=yes"]
    if known_hosts_file:
        parts += ["-o", f"UserKnownHostsFile={known_hosts_file}"]
    return " ".join(shlex.quote(p) for p in parts)


class DeployRepo:
    """One deployment repository branch, worked on in a throw-away clone."""

    def __init__(
        self,
        url: str,
        branch: str,
        *,
        key_file: str | None = None,
        known_hosts_file: str | None = None,
    ) -> None:
        self.url = url
        self.branch = branch
        self.env = child_environ(
            GIT_SSH_COMMAND=ssh_command(key_file, known_hosts_file),
            GIT_TERMINAL_PROMPT="0",
            LC_ALL="C",
        )

    def git(self, *args: str, cwd: Path | None = None, what: str = "") -> str:
        try:
            proc = subprocess.run(
                ["git", *args],
                cwd=cwd,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=120,
                start_new_session=True,
            )
        except subprocess.TimeoutExpired:
            raise RepoError(
                f"git {args[0]} on {self.url} took longer than 120 s.",
                "Check the network path to the repository host.",
            ) from None
        if proc.returncode != 0:
            detail = " ".join(proc.stderr.strip().splitlines()[-3:]) or f"exit {proc.returncode}"
            raise RepoError(
                f"{what or 'git ' + args[0]} failed for {self.url}: {detail}", _git_hint(detail)
            )
        return proc.stdout

    def remote_head(self) -> str | None:
        out = self.git(
            "ls-remote", "--heads", self.url, f"refs/heads/{self.branch}", what="Reading the branch"
        )
        return out.split()[0] if out.strip() else None

    def checkout(self, into: Path) -> bool:
        """Clone the branch into ``into``; an empty repository or a new branch starts fresh.

        Returns whether the branch existed."""
        head = self.remote_head()
        if head is None:
            self.git("init", "--quiet", "--initial-branch", self.branch, str(into))
            self.git("remote", "add", "origin", self.url, cwd=into)
            return False
        self.git("clone", "--quiet", "--branch", self.branch, self.url, str(into), what="Cloning")
        return True

    def descends_from(self, commit: str, ancestor: str) -> bool:
        """Whether ``commit`` is ``ancestor`` or was made on top of it (on the branch)."""
        if commit == ancestor:
            return True
        import tempfile

        with tempfile.TemporaryDirectory(prefix="thinkube-devpi-") as tmp:
            work = Path(tmp) / "repo"
            if not self.checkout(work):
                return False
            proc = subprocess.run(
                ["git", "merge-base", "--is-ancestor", ancestor, commit],
                cwd=work,
                env=self.env,
                capture_output=True,
                timeout=60,
                check=False,
            )
            return proc.returncode == 0

    def sync(self, settings: Settings) -> RepoState:
        """Render, commit if anything changed, push. The image tag on the branch is kept."""
        tmp = Path(tempfile.mkdtemp(prefix="thinkube-devpi-repo-"))
        try:
            work = tmp / "repo"
            existed = self.checkout(work)
            kfile = work / "k8s" / "kustomization.yaml"
            tag = read_tag(kfile.read_text() if kfile.exists() else None)
            changed = []
            for path, content in render_files(settings, tag).items():
                target = work / path
                if target.exists() and target.read_text() == content:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(content)
                changed.append(path)
            if changed:
                self.git("add", "--", *changed, cwd=work)
                self.git(
                    "-c", "user.name=thinkube-devpi",
                    "-c", "user.email=thinkube-devpi@thinkube.invalid",
                    "commit", "--quiet",
                    "-m", "Render the DevPi deployment (thinkube-devpi)",
                    "-m", "Changed: " + ", ".join(changed),
                    "-m", RENDER_TRAILER,
                    cwd=work,
                )  # fmt: skip
                self.git(
                    "push", "--quiet", "origin", f"HEAD:refs/heads/{self.branch}",
                    cwd=work, what="Pushing",
                )  # fmt: skip
            elif not existed:  # pragma: no cover - render_files is never empty
                raise RepoError("nothing to push")
            head = self.git("rev-parse", "HEAD", cwd=work).strip()
            source = self.git(
                "log", "-1", "--format=%H", "--invert-grep", f"--grep=^{BUMP_TRAILER}$", cwd=work
            ).strip()
            return RepoState(head, source or head, tag, bool(changed), tuple(changed))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def read_state(self) -> RepoState:
        """The branch as it is now, without writing."""
        tmp = Path(tempfile.mkdtemp(prefix="thinkube-devpi-repo-"))
        try:
            work = tmp / "repo"
            if not self.checkout(work):
                raise RepoError(
                    f"Branch {self.branch} of {self.url} does not exist yet.",
                    "Apply phase 60 first.",
                )
            kfile = work / "k8s" / "kustomization.yaml"
            tag = read_tag(kfile.read_text() if kfile.exists() else None)
            head = self.git("rev-parse", "HEAD", cwd=work).strip()
            source = self.git(
                "log", "-1", "--format=%H", "--invert-grep", f"--grep=^{BUMP_TRAILER}$", cwd=work
            ).strip()
            return RepoState(head, source or head, tag, False)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _git_hint(detail: str) -> str:
    low = detail.lower()
    if "host key verification failed" in low or "no matching host key" in low:
        return (
            "The host's key is not in ssh_known_hosts_file (or does not match it): add the "
            "host's published key there."
        )
    if "permission denied" in low or "could not read from remote" in low:
        return (
            "Check that the deploy key (ssh_key_file) is registered on the repository with write "
            "access, and that deploy_repo is right."
        )
    if "rejected" in low or "non-fast-forward" in low or "fetch first" in low or "protected" in low:
        return "Someone pushed meanwhile, or the branch is protected: re-run the phase."
    if "could not resolve" in low or "connection" in low or "does not appear" in low:
        return "Check deploy_repo and the network path to the repository host."
    return "Check deploy_repo, deploy_branch and the deploy key."


def ssh_host(url: str) -> str:
    """The host (``[host]:port`` for a non-default port) an SSH git URL connects to."""
    if url.startswith("ssh://"):
        rest = url[len("ssh://") :].split("/", 1)[0]
        host = rest.rsplit("@", 1)[-1]
        if ":" in host:
            h, port = host.rsplit(":", 1)
            return f"[{h}]:{port}"
        return host
    return url.split("@", 1)[-1].split(":", 1)[0]


def known_host_matches(line: str, host: str) -> bool:
    """Whether a known_hosts line may be for ``host`` (hashed lines: ssh decides)."""
    line = line.strip()
    if not line or line.startswith("#"):
        return False
    names = line.split()[0]
    if names.startswith("|1|"):  # hashed entries: we cannot tell, accept ssh's judgement
        return True
    return host in names.split(",")
