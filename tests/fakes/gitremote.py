"""A bare git repository on disk standing in for the deployment repository.

The product keeps its SSH URL; git's ``url.<base>.insteadOf`` (in a test-only global git config,
selected through ``GIT_CONFIG_GLOBAL``) sends every fetch and push to the bare repository.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO_URL = "git@github.com:thinkube-test/devpi-deployment.git"


def git(*args: str, cwd: Path | None = None, check: bool = True) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


class BareRemote:
    def __init__(self, root: Path) -> None:
        self.path = root / "remote.git"
        git("init", "--quiet", "--bare", "--initial-branch", "main", str(self.path))
        self.root = root

    def head(self, branch: str = "main") -> str | None:
        out = git("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", cwd=self.path, check=False)
        return out.strip() or None

    def count(self, branch: str = "main") -> int:
        if self.head(branch) is None:
            return 0
        return int(git("rev-list", "--count", f"refs/heads/{branch}", cwd=self.path).strip())

    def show(self, path: str, branch: str = "main") -> str:
        return git("show", f"refs/heads/{branch}:{path}", cwd=self.path)

    def files(self, branch: str = "main") -> list[str]:
        return git("ls-tree", "-r", "--name-only", f"refs/heads/{branch}", cwd=self.path).split()

    def message(self, rev: str = "refs/heads/main") -> str:
        return git("log", "-1", "--format=%B", rev, cwd=self.path)

    def commit_as_human(self, path: str, content: str, branch: str = "main", message: str = "a human edit") -> str:
        work = self.root / f"human-{self.count(branch)}"
        git("clone", "--quiet", "--branch", branch, str(self.path), str(work))
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_text(content)
        git("add", path, cwd=work)
        git("-c", "user.name=Human", "-c", "user.email=h@example.com", "commit", "--quiet", "-m", message, cwd=work)
        git("push", "--quiet", "origin", f"HEAD:{branch}", cwd=work)
        return git("rev-parse", "HEAD", cwd=work).strip()

    def reject_pushes(self) -> None:
        hook = self.path / "hooks" / "pre-receive"
        hook.write_text("#!/bin/sh\necho 'branch is protected' >&2\nexit 1\n")
        hook.chmod(0o755)


@pytest.fixture
def remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> BareRemote:
    bare = BareRemote(tmp_path)
    cfg = tmp_path / "gitconfig"
    cfg.write_text(f'[url "{bare.path}"]\n\tinsteadOf = {REPO_URL}\n[init]\n\tdefaultBranch = main\n')
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(cfg))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("GIT_DIR", "GIT_WORK_TREE"):
        monkeypatch.delenv(var, raising=False)
    os.environ.pop("GIT_SSH_COMMAND", None)
    return bare


def key_files(tmp_path: Path) -> dict[str, str]:
    """A read-write and a read-only deploy key (0600) and a pinned known_hosts file."""
    out = {}
    for name in ("id_rw", "id_ro"):
        path = tmp_path / "keys" / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True)
        out[name] = str(path)
    kh = tmp_path / "keys" / "known_hosts"
    kh.write_text(
        "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
    )
    out["known_hosts"] = str(kh)
    token = tmp_path / "keys" / "registry-token"
    token.write_text("reg-token-" + os.urandom(8).hex())
    token.chmod(0o600)
    out["registry_token"] = str(token)
    gh = tmp_path / "keys" / "github-token"
    gh.write_text("ghp_" + os.urandom(12).hex())
    gh.chmod(0o600)
    out["github_token"] = str(gh)
    return out
