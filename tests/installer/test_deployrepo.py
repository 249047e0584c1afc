"""The deployment repository against a bare git repository on disk."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from fakes.gitremote import REPO_URL, BareRemote, git
from leakcheck import find, process_argv
from thinkube_devpi.config import Settings
from thinkube_devpi.installer import deployrepo
from thinkube_devpi.installer.deployrepo import (
    BUMP_TRAILER,
    DeployRepo,
    RepoError,
    read_tag,
    render_files,
)


def repo_for(s: Settings) -> DeployRepo:
    return DeployRepo(s.deploy_repo or "", s.deploy_branch, key_file=s.ssh_key_file, known_hosts_file=s.ssh_known_hosts_file)


def bump_like_the_build(remote: BareRemote, tag: str) -> str:
    """What the build's bump step does: only the newTag line changes."""
    text = remote.show("k8s/kustomization.yaml")
    new = "\n".join(
        line.split("newTag:")[0] + "newTag: " + tag if "newTag:" in line else line for line in text.split("\n")
    )
    return remote.commit_as_human("k8s/kustomization.yaml", new, message=f"Deploy devpi image {tag}\n\n{BUMP_TRAILER}")


def test_first_render_commits_every_file(remote: BareRemote, build_settings: Settings) -> None:
    state = repo_for(build_settings).sync(build_settings)
    assert state.committed and remote.count() == 1
    assert state.head == remote.head()
    assert state.tag == "unbuilt" and state.needs_build
    for path, content in render_files(build_settings).items():
        assert remote.show(path) == content
    assert "Thinkube-Devpi-Render" in remote.message()


def test_unchanged_rerender_makes_no_commit(remote: BareRemote, build_settings: Settings) -> None:
    repo = repo_for(build_settings)
    repo.sync(build_settings)
    head = remote.head()
    state = repo.sync(build_settings)
    assert not state.committed and remote.head() == head and remote.count() == 1


def test_bumped_tag_survives_a_rerender_with_zero_commits(remote: BareRemote, build_settings: Settings) -> None:
    repo = repo_for(build_settings)
    first = repo.sync(build_settings)
    tag = f"20261127T101500-{first.head[:7]}"
    bump_like_the_build(remote, tag)
    head = remote.head()
    state = repo.sync(build_settings)
    assert not state.committed and remote.head() == head
    assert state.tag == tag and read_tag(remote.show("k8s/kustomization.yaml")) == tag
    # the bump is no source change: nothing to build
    assert state.source == first.head and not state.needs_build


def test_changed_setting_makes_exactly_one_commit_and_keeps_the_tag(remote: BareRemote, build_settings: Settings) -> None:
    repo = repo_for(build_settings)
    first = repo.sync(build_settings)
    tag = f"20261127T101500-{first.head[:7]}"
    bump_like_the_build(remote, tag)
    before = remote.count()
    changed = dataclasses.replace(build_settings, api_host="pypi.example.com")
    state = repo.sync(changed)
    assert state.committed and remote.count() == before + 1
    assert state.changed == ("k8s/deployment.yaml",)
    assert "pypi.example.com,devpi.example.com" in remote.show("k8s/deployment.yaml")
    assert read_tag(remote.show("k8s/kustomization.yaml")) == tag
    assert repo.sync(changed).committed is False


def test_rejected_push_says_so(remote: BareRemote, build_settings: Settings) -> None:
    remote.reject_pushes()
    with pytest.raises(RepoError) as err:
        repo_for(build_settings).sync(build_settings)
    assert "Pushing failed" in err.value.message and "protected" in str(err.value)
    assert remote.count() == 0


def test_unreachable_repository_says_so(remote: BareRemote, build_settings: Settings, tmp_path: Path) -> None:
    s = dataclasses.replace(build_settings, deploy_repo="git@github.com:thinkube-test/missing.git")
    (tmp_path / "gitconfig").write_text(f'[url "{tmp_path}/nowhere.git"]\n\tinsteadOf = git@github.com:thinkube-test/missing.git\n')
    with pytest.raises(RepoError) as err:
        repo_for(s).sync(s)
    assert "Reading the branch failed" in err.value.message
    assert "deploy_repo" in err.value.hint


def test_new_branch_in_existing_repository(remote: BareRemote, build_settings: Settings) -> None:
    remote.commit_as_human("notes.txt", "hello\n") if remote.head() else None
    s = dataclasses.replace(build_settings, deploy_branch="devpi")
    state = repo_for(s).sync(s)
    assert state.committed and remote.head("devpi") == state.head


def test_no_key_material_in_argv_and_host_keys_pinned(remote: BareRemote, build_settings: Settings, keys: dict[str, str]) -> None:
    private = Path(keys["id_rw"]).read_text()
    with process_argv() as argv:
        repo = repo_for(build_settings)
        repo.sync(build_settings)
    assert argv, "git was started"
    body = "\n".join(line for line in private.splitlines() if "PRIVATE KEY" not in line)
    assert not find(body.replace("\n", ""), "\n".join(argv))
    assert all(not find(line, "\n".join(argv)) for line in body.splitlines() if len(line) > 20)
    ssh = repo.env["GIT_SSH_COMMAND"]
    assert "StrictHostKeyChecking=yes" in ssh and "StrictHostKeyChecking=no" not in ssh
    assert f"UserKnownHostsFile={keys['known_hosts']}" in ssh and keys["id_rw"] in ssh


def test_rendered_manifests_are_valid_and_as_asked(build_settings: Settings) -> None:
    files = render_files(build_settings)
    dep = yaml.safe_load(files["k8s/deployment.yaml"])
    svc = yaml.safe_load(files["k8s/service.yaml"])
    for obj in (dep, svc):
        kubernetes_validate.validate(obj, "1.31", strict=True)
    spec = dep["spec"]
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    (c,) = pod["containers"]
    assert c["resources"]["requests"]["memory"] == "1Gi" and c["resources"]["limits"]["memory"] == "4Gi"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert {v["name"]: v for v in pod["volumes"]}["data"]["persistentVolumeClaim"]["claimName"] == "devpi-data-pvc"
    assert pod["imagePullSecrets"] == [{"name": "devpi-registry-pull"}]
    env = {e["name"]: e for e in c["env"]}
    assert env["DEVPISERVER_ROOT_PASSWD"]["valueFrom"]["secretKeyRef"] == {"name": "devpi-root", "key": "password"}
    assert env["DEVPI_OUTSIDE_HOSTS"]["value"] == "devpi-api.example.com,devpi.example.com"
    assert all(k in c for k in ("readinessProbe", "livenessProbe", "startupProbe"))
    assert "args" not in c and "command" not in c
    # the Service selects the pods on a port they expose
    assert svc["spec"]["selector"] == spec["template"]["metadata"]["labels"]
    assert svc["spec"]["ports"] == [{"name": "http", "port": 3141, "targetPort": "http", "protocol": "TCP"}]
    assert c["ports"][0]["name"] == "http"
    kust = yaml.safe_load(files["k8s/kustomization.yaml"])
    assert kust["images"] == [{"name": "registry.example.com/thinkube/devpi", "newTag": "unbuilt"}]
    assert sorted(kust["resources"]) == ["deployment.yaml", "service.yaml"]
    assert c["image"] == "registry.example.com/thinkube/devpi"


def test_dockerfile_pins_and_runs_non_root(build_settings: Settings) -> None:
    text = render_files(build_settings)["Dockerfile"]
    assert f"python:{deployrepo.PYTHON_VERSION}-slim-bookworm" in text
    for pin in (f"devpi-server=={deployrepo.DEVPI_SERVER}", f"devpi-web=={deployrepo.DEVPI_WEB}", f"devpi-client=={deployrepo.DEVPI_CLIENT}"):
        assert pin in text
    assert "USER 10001:10001" in text and "latest" not in text
    assert "{" not in text


def test_entrypoint_is_posix_sh() -> None:
    files = render_files(Settings(domain="example.com").validate())
    subprocess.run(["sh", "-n", "-c", files["entrypoint.sh"]], check=True)
    assert "--restrict-modify root" in files["entrypoint.sh"]
    assert "--outside-url" not in files["entrypoint.sh"].replace("fixed --outside-url", "")
    assert "root-passwd" not in files["entrypoint.sh"].replace("ROOT_PASSWD", "")


def test_no_secret_in_the_repository(remote: BareRemote, build_settings: Settings, keys: dict[str, str], tmp_path: Path) -> None:
    repo_for(build_settings).sync(build_settings)
    clone = tmp_path / "check"
    git("clone", "--quiet", str(remote.path), str(clone))
    text = "\n".join(p.read_text() for p in clone.rglob("*") if p.is_file() and ".git" not in p.parts)
    for name in ("registry_token", "github_token"):
        assert not find(Path(keys[name]).read_text(), text)
    for line in Path(keys["id_rw"]).read_text().splitlines():
        if "PRIVATE KEY" not in line:
            assert line not in text
    assert "StrictHostKeyChecking=no" not in text and "insecureIgnoreHostKey" not in text
    assert REPO_URL  # the URL itself is not secret
