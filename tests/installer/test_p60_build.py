"""Phase 60 against the fake API server: repository, Argo objects, one build followed live."""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fakes.gitremote import BareRemote
from fakes.kube_api import FakeKubeAPI
from leakcheck import find
from thinkube_devpi.config import Settings
from thinkube_devpi.installer.argo_build import argo_version_from_image
from thinkube_devpi.installer.events import Event, LogLine, ObjectApplied, PhaseFinished, State
from thinkube_devpi.installer.kube import Kube
from thinkube_devpi.installer.phases.base import Context, PhaseError
from thinkube_devpi.installer.phases.p60_build import BuildPhase
from thinkube_devpi.installer.runner import Runner

WF = "argoproj.io/v1alpha1"


class FakeArgo:
    """Plays Argo's controller: for each new Workflow, step pods with logs, then a final phase."""

    def __init__(self, fake: FakeKubeAPI, script: Callable[[FakeArgo, str], None]) -> None:
        self.fake = fake
        self.script = script
        self.seen: set[str] = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.errors: list[BaseException] = []
        self.pods: list[str] = []

    def _run(self) -> None:
        while not self.stop.wait(0.02):
            for wf in self.fake.list(WF, "Workflow", "argo"):
                name = wf["metadata"]["name"]
                if name not in self.seen:
                    self.seen.add(name)
                    try:
                        self.script(self, name)
                    except BaseException as exc:  # surfaced by the test
                        self.errors.append(exc)

    def step(self, wf: str, step: str, phase: str, log: str, message: str = "") -> None:
        pod = f"{wf}-{step}-1"
        # the log first: a container's log exists before anyone can ask for it
        self.fake.set_pod_log("argo", pod, log, container="main")
        self.fake.end_pod_log("argo", pod, container="main")
        self.fake.create({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod, "namespace": "argo",
                         "labels": {"workflows.argoproj.io/workflow": wf},
                         "annotations": {"workflows.argoproj.io/node-name": f"{wf}[0].{step}"}},
            "spec": {"containers": [{"name": "wait", "image": "argoexec"}, {"name": "main", "image": "x"}]},
            "status": {"phase": "Running"},
        })
        self.fake.patch_status(WF, "Workflow", wf, "argo", {"phase": "Running", "nodes": {
            pod: {"id": pod, "name": f"{wf}[0].{step}", "displayName": step, "type": "Pod", "phase": "Running"}}})
        self.fake.patch_status(WF, "Workflow", wf, "argo", {"nodes": {
            pod: {"phase": phase, "message": message, "finishedAt": f"2026-11-27T10:00:0{len(self.seen)}Z"}}})
        self.pods.append(pod)
        if phase == "Succeeded" and self.pod_gc()[0] == "OnPodSuccess":
            # Argo's pod GC: the step's pod goes as soon as it succeeded, its log with it
            self.fake.delete("v1", "Pod", pod, "argo")

    def pod_gc(self) -> tuple[str, str]:
        """The podGC the applied WorkflowTemplate asks for: (strategy, deleteDelayDuration)."""
        wft = self.fake.get(WF, "WorkflowTemplate", "devpi-build", "argo") or {}
        gc = (wft.get("spec") or {}).get("podGC") or {}
        return str(gc.get("strategy", "")), str(gc.get("deleteDelayDuration", "0s"))

    def finish(self, wf: str, phase: str, message: str = "") -> None:
        self.fake.patch_status(WF, "Workflow", wf, "argo", {"phase": phase, "message": message})
        strategy, delay = self.pod_gc()
        if phase == "Succeeded" and strategy in ("OnWorkflowSuccess", "OnWorkflowCompletion") and delay in ("", "0s"):
            for pod in self.pods:  # no delay: the pods go with the run's end
                if self.fake.get("v1", "Pod", pod, "argo") is not None:
                    self.fake.delete("v1", "Pod", pod, "argo")

    def __enter__(self) -> FakeArgo:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(2)
        if self.errors:
            raise self.errors[0]


def succeed(argo: FakeArgo, wf: str) -> None:
    argo.step(wf, "resolve", "Succeeded", "source commit abc1234: building\n")
    token = Path(argo.token_file).read_text()  # type: ignore[attr-defined]
    argo.step(wf, "build", "Succeeded", f"INFO pushing with {token}\n-----BEGIN OPENSSH PRIVATE KEY-----\nINFO Pushed image\n")
    argo.step(wf, "bump", "Succeeded", "pushed image tag\n")
    argo.finish(wf, "Succeeded")


def fail_build(argo: FakeArgo, wf: str) -> None:
    argo.step(wf, "resolve", "Succeeded", "resolving\n")
    argo.step(wf, "build", "Failed", "error building image: step 3\n", message="Error (exit code 1)")
    argo.finish(wf, "Failed", "child 'build' failed")


@pytest.fixture
def bctx(build_settings: Settings, kube: Kube, fake_kube: FakeKubeAPI, remote: BareRemote) -> Context:
    fake_kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "devpi"}})
    return Context(build_settings, kube, wait_timeout=20)


def run(ctx: Context, action: str = "apply", **kw: Any) -> tuple[bool, list[Event]]:
    events: list[Event] = []
    ok = getattr(Runner(ctx, emit=events.append), action)(["build"], **kw)
    return ok, events


@pytest.fixture
def argo_ok(fake_kube: FakeKubeAPI, keys: dict[str, str]) -> Iterator[FakeArgo]:
    with FakeArgo(fake_kube, succeed) as argo:
        argo.token_file = keys["registry_token"]  # type: ignore[attr-defined]
        yield argo


def test_apply_renders_applies_and_follows_a_build(bctx: Context, fake_kube: FakeKubeAPI, remote: BareRemote, argo_ok: FakeArgo, keys: dict[str, str]) -> None:
    ok, events = run(bctx)
    finished = [e for e in events if isinstance(e, PhaseFinished)]
    assert ok, finished
    assert remote.count() == 1
    applied = {str(e.ref) for e in events if isinstance(e, ObjectApplied)}
    assert {"Secret argo/devpi-git-ssh", "Secret argo/devpi-registry-push",
            "WorkflowTemplate argo/devpi-build", "CronWorkflow argo/devpi-repo-monitor"} <= applied
    # the push credential never leaves the build namespace (no pull credential configured here)
    assert "Secret devpi/devpi-registry-pull" not in applied
    for obj in fake_kube.list("v1", "Secret", "devpi"):
        for value in (obj.get("data") or {}).values():
            assert not find(Path(keys["registry_token"]).read_text(), base64.b64decode(value).decode())
    (wf,) = fake_kube.list(WF, "Workflow", "argo")
    assert wf["spec"]["workflowTemplateRef"] == {"name": "devpi-build"}
    lines = [e.text for e in events if isinstance(e, LogLine)]
    text = "\n".join(lines)
    assert "[resolve] source commit abc1234: building" in text
    assert "[build] INFO Pushed image" in text
    assert "step build: Succeeded" in text
    token = Path(keys["registry_token"]).read_text()
    assert not find(token, text) and "PRIVATE KEY" not in text
    # Kaniko's config.json carries user and token for the registry
    secret = fake_kube.get("v1", "Secret", "devpi-registry-push", "argo")
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    cfg = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    assert base64.b64decode(cfg["auths"]["registry.example.com"]["auth"]).decode() == f"robot-builder:{token}"
    ssh = fake_kube.get("v1", "Secret", "devpi-git-ssh", "argo")
    assert set(ssh["data"]) == {"ssh-privatekey", "known_hosts"}
    statuses = dict((p.name, s) for p, s in Runner(bctx).status(["build"]))
    assert statuses["build"].state is State.HEALTHY, statuses


def test_failed_build_reports_the_failing_step(bctx: Context, fake_kube: FakeKubeAPI, remote: BareRemote) -> None:
    with FakeArgo(fake_kube, fail_build):
        ok, events = run(bctx)
    assert not ok
    (fin,) = [e for e in events if isinstance(e, PhaseFinished)]
    assert "step build failed: Error (exit code 1)" in fin.message
    assert "[build] error building image: step 3" in "\n".join(e.text for e in events if isinstance(e, LogLine))
    status = dict((p.name, s) for p, s in Runner(bctx).status(["build"]))["build"]
    assert status.state is State.FAILED and "step build failed" in status.reason


def test_converged_rerun_builds_nothing_and_writes_nothing(bctx: Context, fake_kube: FakeKubeAPI, remote: BareRemote, argo_ok: FakeArgo) -> None:
    assert run(bctx)[0]
    # play the bump the build would have pushed
    from fakes.gitremote import git  # noqa: F401
    from thinkube_devpi.installer.deployrepo import BUMP_TRAILER

    text = remote.show("k8s/kustomization.yaml").replace("newTag: unbuilt", f"newTag: 20261127T100000-{remote.head()[:7]}")
    remote.commit_as_human("k8s/kustomization.yaml", text, message=f"Deploy\n\n{BUMP_TRAILER}")
    head = remote.head()
    fake_kube.clear_log()
    ok, events = run(bctx, force=True)
    assert ok
    assert len(fake_kube.list(WF, "Workflow", "argo")) == 1
    assert remote.head() == head
    assert {e.outcome for e in events if isinstance(e, ObjectApplied)} == {"unchanged"}
    assert "no build needed" in "\n".join(e.text for e in events if isinstance(e, LogLine))


def test_plan_without_cluster_lists_objects_and_no_secret_values(build_settings: Settings) -> None:
    (plan,) = Runner(Context(build_settings)).plan(["build"])
    secrets = {str(i.ref): i.secret_keys for i in plan.items if i.ref.kind == "Secret"}
    assert secrets["Secret argo/devpi-registry-push"] == {".dockerconfigjson": "from registry_user and registry_token_file"}
    assert secrets["Secret argo/devpi-git-ssh"] == {"ssh-privatekey": "from ssh_key_file", "known_hosts": "from ssh_known_hosts_file"}
    assert all("data" not in i.manifest for i in plan.items)


def test_cron_schedule_follows_the_controller_version(bctx: Context, fake_kube: FakeKubeAPI) -> None:
    phase = BuildPhase(bctx)
    assert "schedules" in phase.objects()[-1]["spec"]
    fake_kube.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "workflow-controller", "namespace": "argo"},
                      "spec": {"selector": {"matchLabels": {"app": "wc"}}, "template": {"metadata": {"labels": {"app": "wc"}},
                               "spec": {"containers": [{"name": "c", "image": "quay.io/argoproj/workflow-controller:v3.5.8"}]}}}})
    cron = phase.objects()[-1]["spec"]
    assert cron["schedule"] == "*/5 * * * *" and "schedules" not in cron
    assert cron["concurrencyPolicy"] == "Forbid"
    assert argo_version_from_image("quay.io/argoproj/workflow-controller:v3.6.2") == (3, 6)


def test_rollback_in_order_and_keeps_the_repository(bctx: Context, fake_kube: FakeKubeAPI, remote: BareRemote, argo_ok: FakeArgo) -> None:
    assert run(bctx)[0]
    argo_ok.stop.set()
    fake_kube.create({"apiVersion": WF, "kind": "Workflow", "metadata": {"name": "devpi-repo-monitor-1", "namespace": "argo",
                      "labels": {"workflows.argoproj.io/cron-workflow": "devpi-repo-monitor"}}, "spec": {}, "status": {"phase": "Running"}})
    head = remote.head()
    fake_kube.clear_log()
    ok, events = run(bctx, "rollback")
    assert ok
    deletes = [r.path for r in fake_kube.requests if r.method == "DELETE"]
    order = [next(k for k in ("cronworkflows", "workflows/", "workflowtemplates", "secrets") if k in p) for p in deletes]
    runs = order.count("workflows/")  # the running monitor run, then the finished build
    assert runs == 2
    assert order[: 2 + runs] == ["cronworkflows", *["workflows/"] * runs, "workflowtemplates"]
    assert set(order[2 + runs :]) == {"secrets"}
    assert fake_kube.list(WF, "Workflow", "argo") == []
    assert remote.head() == head
    assert "left as it is" in "\n".join(e.text for e in events if isinstance(e, LogLine))
    assert fake_kube.list(WF, "WorkflowTemplate", "argo") == []


@pytest.mark.parametrize(
    "change,words",
    [
        ({"deploy_repo": None}, ["deploy_repo is not set"]),
        ({"ssh_known_hosts_file": None}, ["ssh_known_hosts_file is not set"]),
        ({"registry_user": None}, ["No registry credentials"]),
        ({"deploy_repo": "git@gitlab.example.com:org/repo.git"}, ["no key for gitlab.example.com"]),
    ],
)
def test_preflight_refuses_before_writing(bctx: Context, fake_kube: FakeKubeAPI, remote: BareRemote, change: dict[str, Any], words: list[str]) -> None:
    ctx = dataclasses.replace(bctx, settings=dataclasses.replace(bctx.settings, **change))
    fake_kube.clear_log()
    with pytest.raises(PhaseError) as err:
        BuildPhase(ctx).apply(lambda e: None)
    for w in words:
        assert w in str(err.value)
    assert fake_kube.writes() == [] and remote.count() == 0


def test_devpi_namespace_gets_the_pull_only_credential(bctx: Context, fake_kube: FakeKubeAPI, remote: BareRemote, argo_ok: FakeArgo, keys: dict[str, str], tmp_path: Path) -> None:
    pull_token = tmp_path / "pull-token"
    pull_token.write_text("pull-only-" + "9" * 12)
    pull_token.chmod(0o600)
    bctx.settings.registry_pull_user = "robot-puller"
    bctx.settings.registry_pull_token_file = str(pull_token)
    ok, events = run(bctx)
    assert ok, [e for e in events if isinstance(e, PhaseFinished)]
    secret = fake_kube.get("v1", "Secret", "devpi-registry-pull", "devpi")
    cfg = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    assert base64.b64decode(cfg["auths"]["registry.example.com"]["auth"]).decode() == f"robot-puller:{pull_token.read_text()}"
    push = Path(keys["registry_token"]).read_text()
    assert not find(push, base64.b64decode(secret["data"][".dockerconfigjson"]).decode())


def test_a_rerun_follows_the_build_still_running_instead_of_submitting_another(
    bctx: Context, fake_kube: FakeKubeAPI, keys: dict[str, str]
) -> None:
    """An interrupted run leaves its build Workflow running: the re-run finds the build of the
    same source commit and follows it (two builds would race to bump the same tag)."""
    release = threading.Event()

    def slow(argo: FakeArgo, wf: str) -> None:
        argo.step(wf, "resolve", "Succeeded", "source commit abc1234: building\n")
        release.wait(30)
        argo.step(wf, "build", "Succeeded", "INFO Pushed image\n")
        argo.step(wf, "bump", "Succeeded", "pushed image tag\n")
        argo.finish(wf, "Succeeded")

    with FakeArgo(fake_kube, slow) as argo:
        argo.token_file = keys["registry_token"]  # type: ignore[attr-defined]
        bctx.wait_timeout = 1.5
        ok, events = run(bctx)
        assert not ok
        (failed,) = [e for e in events if isinstance(e, PhaseFinished) and not e.ok]
        assert "Timed out after 1.5s waiting for Workflow" in failed.message
        (first,) = fake_kube.list(WF, "Workflow", "argo")
        assert first["metadata"]["labels"]["thinkube-devpi/source-commit"]
        looked = len(_build_lookups(fake_kube))

        def release_once_looked_up() -> None:
            # the re-run found the running build (its lookup by commit), then the build ends
            deadline = time.monotonic() + 30
            while len(_build_lookups(fake_kube)) == looked and time.monotonic() < deadline:
                time.sleep(0.02)
            release.set()

        threading.Thread(target=release_once_looked_up, daemon=True).start()
        bctx.wait_timeout = 20
        ok, events = run(bctx)
        assert ok, [e for e in events if isinstance(e, PhaseFinished)]
    assert [w["metadata"]["name"] for w in fake_kube.list(WF, "Workflow", "argo")] == [
        first["metadata"]["name"]
    ]
    lines = [e.text for e in events if isinstance(e, LogLine)]
    assert any(f"following Workflow argo/{first['metadata']['name']}" in line for line in lines)
    assert not any(line.startswith("submitted Workflow") for line in lines)


def _build_lookups(fake: FakeKubeAPI) -> list[object]:
    return [
        r for r in list(fake.requests)
        if r.method == "GET" and "source-commit" in r.query.get("labelSelector", "")
    ]
