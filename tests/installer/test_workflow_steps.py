"""The rendered WorkflowTemplate's and CronWorkflow's shell steps, run locally.

A small stand-in for Argo: it takes each step out of the rendered objects, substitutes the
``{{...}}`` parameters as Argo would, maps the pod paths (/workspace, /etc/git-ssh, /tmp) into a
temporary folder, and runs the scripts with sh against the bare repository. Kaniko is a stub
that checks the context, the Dockerfile and the destination it is given.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from fakes.gitremote import BareRemote, git
from thinkube_devpi.config import Settings
from thinkube_devpi.installer.argo_build import cron_workflow, workflow_template
from thinkube_devpi.installer.deployrepo import BUMP_TRAILER, DeployRepo, read_tag

TAG = re.compile(r"^registry\.example\.com/thinkube/devpi:(\d{8}T\d{6})-([0-9a-f]{7})$")


class LocalArgo:
    def __init__(self, settings: Settings, root: Path, keys: dict[str, str]) -> None:
        self.wft = workflow_template(settings)
        self.templates = {t["name"]: t for t in self.wft["spec"]["templates"]}
        self.root = root
        self.ssh = root / "git-ssh"
        self.ssh.mkdir(parents=True)
        (self.ssh / "ssh-privatekey").write_text(Path(keys["id_rw"]).read_text())
        (self.ssh / "known_hosts").write_text(Path(keys["known_hosts"]).read_text())
        self.built: list[str] = []
        self.runs = 0

    def path(self, text: str, tmp: Path) -> str:
        return (
            text.replace("/workspace", str(self.root / "workspace"))
            .replace("/etc/git-ssh", str(self.ssh))
            .replace("/tmp", str(tmp))
        )

    def substitute(self, text: str, params: dict[str, str]) -> str:
        def one(m: re.Match[str]) -> str:
            key = m.group(1).strip()
            assert key in params, f"unknown parameter {key}"
            return params[key]

        return re.sub(r"\{\{([^}]+)\}\}", one, text)

    def env(self, container: dict[str, Any], params: dict[str, str], tmp: Path) -> dict[str, str]:
        env = {"PATH": os.environ["PATH"], "GIT_CONFIG_GLOBAL": os.environ["GIT_CONFIG_GLOBAL"], "GIT_CONFIG_NOSYSTEM": "1"}
        for item in container.get("env", []):
            assert "valueFrom" not in item or "secretKeyRef" not in item["valueFrom"]
            env[item["name"]] = self.path(self.substitute(item["value"], params), tmp)
        return env

    def sh(self, argv: list[str], env: dict[str, str], stdin: str | None = None) -> str:
        proc = subprocess.run(argv, input=stdin, env=env, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr
        assert "PRIVATE KEY" not in proc.stdout + proc.stderr
        return proc.stdout

    def run(self, only_if_changed: str) -> dict[str, str]:
        """One Workflow run: resolve, then build and bump when resolve says so."""
        self.runs += 1
        tmp = self.root / f"run{self.runs}"
        tmp.mkdir()
        params = {"workflow.parameters.only-if-changed": only_if_changed}
        resolve = self.templates["resolve"]
        script = resolve["script"]
        assert script["command"] == ["sh"]
        self.sh(["sh"], self.env(script, params, tmp), script["source"])
        out = {}
        for p in resolve["outputs"]["parameters"]:
            out[p["name"]] = Path(self.path(p["valueFrom"]["path"], tmp)).read_text()
        main = self.templates["main"]["steps"]
        step_params = {f"steps.resolve.outputs.parameters.{k}": v for k, v in out.items()}
        for (step,) in main[1:]:
            when = self.substitute(step["when"], step_params)
            assert when in ("true == true", "false == true")
            if when != "true == true":
                continue
            args = {f"inputs.parameters.{a['name']}": self.substitute(a["value"], step_params) for a in step["arguments"]["parameters"]}
            getattr(self, f"step_{step['template']}")(self.templates[step["template"]], args, tmp)
        return out

    def step_build(self, t: dict[str, Any], params: dict[str, str], tmp: Path) -> None:
        (init,) = t["initContainers"]
        assert init["command"][:2] == ["sh", "-c"]
        self.sh(init["command"], self.env(init, params, tmp))
        args = [self.path(self.substitute(a, params), tmp) for a in t["container"]["args"]]
        self.stub_kaniko(args, params["inputs.parameters.sha"])

    def stub_kaniko(self, args: list[str], sha: str) -> None:
        opts = dict(a[2:].split("=", 1) for a in args if "=" in a)
        context = Path(opts["context"].removeprefix("dir://"))
        assert (context / "Dockerfile").is_file() and Path(opts["dockerfile"]) == context / "Dockerfile"
        assert git("rev-parse", "HEAD", cwd=context).strip() == sha
        m = TAG.match(opts["destination"])
        assert m and m.group(2) == sha[:7], opts["destination"]
        assert "skip-tls-verify" not in " ".join(args)
        assert (context / "entrypoint.sh").is_file()
        self.built.append(opts["destination"])

    def step_bump(self, t: dict[str, Any], params: dict[str, str], tmp: Path) -> None:
        script = t["script"]
        self.sh(["sh"], self.env(script, params, tmp), script["source"])


@pytest.fixture
def argo(build_settings: Settings, tmp_path: Path, keys: dict[str, str], remote: BareRemote) -> LocalArgo:
    DeployRepo(build_settings.deploy_repo or "", "main").sync(build_settings)
    return LocalArgo(build_settings, tmp_path / "argo", keys)


def test_build_pushes_image_bumps_tag_and_render_keeps_it(argo: LocalArgo, remote: BareRemote, build_settings: Settings) -> None:
    source = remote.head()
    before = remote.count()
    out = argo.run("false")
    assert out["build"] == "true" and out["sha"] == source
    assert argo.built == [f"registry.example.com/thinkube/devpi:{out['tag']}"]
    assert remote.count() == before + 1
    assert read_tag(remote.show("k8s/kustomization.yaml")) == out["tag"]
    assert BUMP_TRAILER in remote.message()
    # the installer's next render keeps the tag and commits nothing
    state = DeployRepo(build_settings.deploy_repo or "", "main").sync(build_settings)
    assert not state.committed and state.tag == out["tag"] and not state.needs_build


def test_monitor_rebuilds_after_a_human_commit_only(argo: LocalArgo, remote: BareRemote, build_settings: Settings) -> None:
    cron = cron_workflow(build_settings)
    params = {p["name"]: p["value"] for p in cron["spec"]["workflowSpec"]["arguments"]["parameters"]}
    monitor = params["only-if-changed"]
    assert monitor == "true"
    first = argo.run(monitor)  # never built: builds
    assert first["build"] == "true" and len(argo.built) == 1
    head = remote.head()
    again = argo.run(monitor)  # its own bump is no source change
    assert again["build"] == "false" and len(argo.built) == 1 and remote.head() == head
    again = argo.run(monitor)  # still nothing
    assert again["build"] == "false" and remote.head() == head
    human = remote.commit_as_human("Dockerfile", remote.show("Dockerfile") + "# tuned\n")
    third = argo.run(monitor)
    assert third["build"] == "true" and third["sha"] == human
    assert len(argo.built) == 2 and argo.built[-1].endswith(human[:7])
    assert read_tag(remote.show("k8s/kustomization.yaml")) == third["tag"]
    assert argo.run(monitor)["build"] == "false"


def test_bump_keeps_a_newer_tag(argo: LocalArgo, remote: BareRemote) -> None:
    out = argo.run("false")
    head = remote.head()
    older = "20000101T000000-" + out["sha"][:7]
    tmp = argo.root / "old"
    tmp.mkdir()
    argo.step_bump(argo.templates["bump"], {"inputs.parameters.tag": older}, tmp)
    assert remote.head() == head and read_tag(remote.show("k8s/kustomization.yaml")) == out["tag"]


def test_insecure_registry_only_when_configured(build_settings: Settings) -> None:
    import dataclasses

    args = {t["name"]: t for t in workflow_template(build_settings)["spec"]["templates"]}["build"]["container"]["args"]
    assert "--skip-tls-verify" not in args
    insecure = dataclasses.replace(build_settings, registry_insecure=True)
    args = {t["name"]: t for t in workflow_template(insecure)["spec"]["templates"]}["build"]["container"]["args"]
    assert "--skip-tls-verify" in args
