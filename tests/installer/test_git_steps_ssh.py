"""The build's git steps as the pod runs them: its uid, its image's users, real ssh (issue 12, item 2).

The rendered WorkflowTemplate's resolve step, the build pod's clone init container and the bump
step run here with ``sh`` as the uid and groups their ``securityContext`` names (``setpriv``), in a
mount namespace where ``/etc/passwd`` is alpine/git's, against a real ``sshd`` on 127.0.0.1 that
serves the bare deployment repository, with the pinned known hosts and the deploy key coming from
files laid out like the Secret volume (``defaultMode`` and ``fsGroup`` as the template says).
Kaniko is a stub that checks the checkout it would build.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fakes.gitremote import git, key_files
from fakes.sshd import Sshd, as_pod_user, require_root_tools
from thinkube_devpi.config import Settings
from thinkube_devpi.installer.argo_build import workflow_template
from thinkube_devpi.installer.deployrepo import BUMP_TRAILER, DeployRepo, read_tag


@dataclasses.dataclass(frozen=True)
class Uid:
    uid: int
    gid: int
    fs_group: int | None


def _uid(template: dict[str, Any], container: dict[str, Any]) -> Uid:
    ctx = container.get("securityContext") or {}
    pod = template.get("securityContext") or {}
    uid = ctx.get("runAsUser", pod.get("runAsUser"))
    assert uid is not None, "the step must say which uid it runs as (the image's default is root)"
    return Uid(int(uid), int(ctx.get("runAsGroup", pod.get("runAsGroup", uid))), pod.get("fsGroup"))


class PodRunner:
    """Runs the template's git containers as their pods would."""

    def __init__(self, settings: Settings, base: Path, ssh_key: str, known_hosts: str) -> None:
        self.wft = workflow_template(settings)
        self.templates = {t["name"]: t for t in self.wft["spec"]["templates"]}
        self.base = base
        self.runs = 0
        volumes = {v["name"]: v for v in self.wft["spec"]["volumes"]}
        self.ssh_mode = volumes["git-ssh"]["secret"].get("defaultMode", 0o644)
        self.ssh_dir = base / "git-ssh"
        self.ssh_dir.mkdir()
        (self.ssh_dir / "ssh-privatekey").write_text(ssh_key)
        (self.ssh_dir / "known_hosts").write_text(known_hosts)
        self.gitconfig = base / "gitconfig"
        self.gitconfig.write_text("")
        self.gitconfig.chmod(0o644)
        self.log: list[str] = []

    def _volume_for(self, who: Uid) -> None:
        # a Secret volume's files: owned by root, group fsGroup, mode defaultMode
        for f in self.ssh_dir.iterdir():
            os.chown(f, 0, who.fs_group if who.fs_group is not None else 0)
            f.chmod(self.ssh_mode)
        self.ssh_dir.chmod(0o755)

    def _map(self, text: str, tmp: Path, workspace: Path) -> str:
        # one pass: a mapped path (under /tmp here) must not be mapped again
        where = {"/workspace": workspace, "/etc/git-ssh": self.ssh_dir, "/tmp": tmp}
        # (and only where a path starts: the repository URL's path is the server's)
        return re.sub(
            r"(?<![\w./:-])(/workspace|/etc/git-ssh|/tmp)(?=/|$|\s)",
            lambda m: str(where[m.group(0)]),
            text,
        )

    @staticmethod
    def _subst(text: str, params: dict[str, str]) -> str:
        return re.sub(r"\{\{([^}]+)\}\}", lambda m: params[m.group(1).strip()], text)

    def run_container(
        self,
        template: str,
        container: dict[str, Any],
        params: dict[str, str],
        tmp: Path,
        workspace: Path,
        *,
        uid: Uid | None = None,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        t = self.templates[template]
        who = uid or _uid(t, container)
        self._volume_for(who)
        for d in (tmp, workspace):
            d.mkdir(parents=True, exist_ok=True)
            os.chown(d, who.uid, who.fs_group if who.fs_group is not None else who.gid)
            d.chmod(0o775)
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "GIT_CONFIG_GLOBAL": str(self.gitconfig),
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        for item in container.get("env", []):
            env[item["name"]] = self._map(self._subst(item["value"], params), tmp, workspace)
        argv = container["command"]
        if stdin is None:
            argv = [self._map(self._subst(a, params), tmp, workspace) for a in argv]
        wrapped = as_pod_user(
            argv, uid=who.uid, gid=who.gid, fs_group=who.fs_group, etc=self.base / "etc"
        )
        proc = subprocess.run(
            wrapped, input=stdin, env=env, capture_output=True, text=True, check=False, timeout=60
        )
        self.log.append(proc.stdout + proc.stderr)
        assert "PRIVATE KEY" not in proc.stdout + proc.stderr
        return proc

    def run(self, only_if_changed: str = "false", uid: Uid | None = None) -> dict[str, str]:
        self.runs += 1
        tmp = self.base / f"run{self.runs}" / "tmp"
        workspace = self.base / f"run{self.runs}" / "workspace"
        (self.base / f"run{self.runs}").mkdir()
        (self.base / f"run{self.runs}").chmod(0o755)
        script = self.templates["resolve"]["script"]
        proc = self.run_container(
            "resolve",
            script,
            {"workflow.parameters.only-if-changed": only_if_changed},
            tmp,
            workspace,
            uid=uid,
            stdin=script["source"],
        )
        assert proc.returncode == 0, proc.stderr
        out = {
            p["name"]: Path(self._map(p["valueFrom"]["path"], tmp, workspace)).read_text()
            for p in self.templates["resolve"]["outputs"]["parameters"]
        }
        if out["build"] != "true":
            return out
        params = {"inputs.parameters.sha": out["sha"], "inputs.parameters.tag": out["tag"]}
        (clone,) = self.templates["build"]["initContainers"]
        proc = self.run_container("build", clone, params, tmp, workspace)
        assert proc.returncode == 0, proc.stderr
        src = workspace / "src"
        # the Kaniko stub: the checkout it builds is the resolved commit, with its Dockerfile
        assert (src / "Dockerfile").is_file()
        head = subprocess.run(
            ["git", "-c", f"safe.directory={src}", "rev-parse", "HEAD"],
            cwd=src,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert head == out["sha"]
        bump = self.templates["bump"]["script"]
        proc = self.run_container(
            "bump", bump, {"inputs.parameters.tag": out["tag"]}, tmp, workspace, stdin=bump["source"]
        )
        assert proc.returncode == 0, proc.stderr
        return out


@pytest.fixture
def base() -> Iterator[Path]:
    # not under pytest's tmp_path: its folders are 0700, which another uid cannot enter
    path = Path(tempfile.mkdtemp(prefix="tk-devpi-ssh-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def served(base: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Settings, Sshd, Path]]:
    require_root_tools()
    keys = key_files(base)
    bare = base / "remote.git"
    git("init", "--quiet", "--bare", "--initial-branch", "main", str(bare))
    cfg = base / "root-gitconfig"
    cfg.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(cfg))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("GIT_SSH_COMMAND", raising=False)
    with Sshd(base / "sshd", Path(keys["id_rw"] + ".pub").read_text()) as sshd:
        known = base / "known_hosts"
        known.write_text(sshd.known_hosts_line)
        settings = Settings(
            domain="example.com",
            deploy_repo=sshd.url(bare),
            ssh_key_file=keys["id_rw"],
            ssh_readonly_key_file=keys["id_ro"],
            ssh_known_hosts_file=str(known),
            registry_user="robot-builder",
            registry_token_file=keys["registry_token"],
        ).validate()
        # the installer's own render and push, over the same ssh
        DeployRepo(
            settings.deploy_repo or "",
            "main",
            key_file=settings.ssh_key_file,
            known_hosts_file=settings.ssh_known_hosts_file,
        ).sync(settings)
        yield settings, sshd, bare


def _runner(settings: Settings, base: Path) -> PodRunner:
    return PodRunner(
        settings,
        base / "pod",
        Path(settings.ssh_key_file or "").read_text(),
        Path(settings.ssh_known_hosts_file or "").read_text(),
    )


def test_steps_clone_resolve_build_and_bump_over_ssh_as_the_pods_uid(
    served: tuple[Settings, Sshd, Path], base: Path
) -> None:
    settings, _, bare = served
    (base / "pod").mkdir()
    runner = _runner(settings, base)
    source = git("rev-parse", "refs/heads/main", cwd=bare).strip()
    out = runner.run("false")
    assert out["build"] == "true" and out["sha"] == source
    kustomization = git("show", "refs/heads/main:k8s/kustomization.yaml", cwd=bare)
    assert read_tag(kustomization) == out["tag"]
    assert BUMP_TRAILER in git("log", "-1", "--format=%B", "refs/heads/main", cwd=bare)
    # the monitor's next run finds nothing to build: its own bump is no source change
    assert runner.run("true")["build"] == "false"


def test_a_uid_without_a_passwd_entry_cannot_use_ssh(
    served: tuple[Settings, Sshd, Path], base: Path
) -> None:
    """Why the steps run as alpine/git's git-user: ssh refuses any uid the image does not know."""
    settings, _, _ = served
    (base / "pod").mkdir()
    runner = _runner(settings, base)
    with pytest.raises(AssertionError):
        runner.run("false", uid=Uid(65532, 65532, 65532))
    assert "No user exists for uid 65532" in runner.log[-1]
