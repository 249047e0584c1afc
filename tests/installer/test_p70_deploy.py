"""Phase 70 against the fake API server: ArgoCD plays by the test, devpi-init as a Job."""

from __future__ import annotations

import base64
import copy
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fakes.gitremote import BareRemote
from fakes.kube_api import FakeKubeAPI
from fakes.npm_validators import validate_applications
from leakcheck import find
from thinkube_devpi.config import Settings
from thinkube_devpi.installer.deployrepo import BUMP_TRAILER, DeployRepo
from thinkube_devpi.installer.events import Event, LogLine, PhaseFinished
from thinkube_devpi.installer.kube import Kube, with_common_labels
from thinkube_devpi.installer.phases.base import Context
from thinkube_devpi.installer.phases.p70_deploy import REFRESH, DeployPhase
from thinkube_devpi.installer.runner import Runner
from thinkube_devpi.secrets import Secret

APP = "argoproj.io/v1alpha1"
ADMIN = "admin-" + "pw-" + "9f3c1e77aa"


def watch_for(fake: FakeKubeAPI, api: str, kind: str, name: str, ns: str, act: Callable[[dict[str, Any]], None]) -> threading.Thread:
    """Plays a controller: once the object exists (and whenever it is recreated), ``act`` on it."""
    stop = threading.Event()
    done: set[str] = set()

    def loop() -> None:
        while not stop.wait(0.02):
            obj = fake.get(api, kind, name, ns)
            if obj and obj["metadata"]["uid"] not in done:
                done.add(obj["metadata"]["uid"])
                act(obj)

    t = threading.Thread(target=loop, daemon=True)
    t.stop = stop  # type: ignore[attr-defined]
    t.start()
    return t


@pytest.fixture
def built(build_settings: Settings, remote: BareRemote) -> str:
    """The branch after phase 60: rendered, then bumped by a build. Returns the pushed head."""
    DeployRepo(build_settings.deploy_repo or "", "main").sync(build_settings)
    text = remote.show("k8s/kustomization.yaml").replace("newTag: unbuilt", f"newTag: 20261127T100000-{remote.head()[:7]}")
    return remote.commit_as_human("k8s/kustomization.yaml", text, message=f"Deploy\n\n{BUMP_TRAILER}")


@pytest.fixture
def dctx(build_settings: Settings, kube: Kube, fake_kube: FakeKubeAPI) -> Context:
    fake_kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "devpi"}})
    fake_kube.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "argocd-ssh-known-hosts-cm", "namespace": "argocd"},
                      "data": {"ssh_known_hosts": Path(build_settings.ssh_known_hosts_file or "").read_text()}})
    return Context(build_settings, kube, wait_timeout=15, session_secrets={"DEVPI_ADMIN_PASSWORD": Secret(ADMIN)})


def argocd(fake: FakeKubeAPI, revisions: list[str], health: str = "Healthy", message: str = "") -> threading.Thread:
    """ArgoCD: first reports the old revision Synced, then (after the refresh) the new one."""
    def act(app: dict[str, Any]) -> None:
        for i, rev in enumerate(revisions):
            last = i == len(revisions) - 1
            if last and i > 0:
                # like ArgoCD, see the new commit only once asked to refresh (or after its poll)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    live = fake.get(APP, "Application", "devpi", "argocd") or {}
                    if (live.get("metadata", {}).get("annotations") or {}).get(REFRESH):
                        break
                    time.sleep(0.02)
            fake.patch_status(APP, "Application", "devpi", "argocd", {
                "sync": {"status": "Synced", "revision": rev},
                "operationState": {"phase": "Succeeded", "syncResult": {"revision": rev}},
                "health": {"status": health if last else "Healthy", **({"message": message} if last and message else {})},
            })
    return watch_for(fake, APP, "Application", "devpi", "argocd", act)


def job_controller(fake: FakeKubeAPI, ok: bool = True) -> threading.Thread:
    def act(job: dict[str, Any]) -> None:
        status = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]} if ok else {
            "failed": 7, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}
        fake.patch_status("batch/v1", "Job", "devpi-init", "devpi", status)
    return watch_for(fake, "batch/v1", "Job", "devpi-init", "devpi", act)


def run(ctx: Context, action: str = "apply", **kw: Any) -> tuple[bool, list[Event]]:
    events: list[Event] = []
    ok = getattr(Runner(ctx, emit=events.append), action)(["deploy"], **kw)
    return ok, events


def finished(events: list[Event]) -> PhaseFinished:
    return next(e for e in events if isinstance(e, PhaseFinished))


def test_waits_for_the_pushed_revision_then_initialises(dctx: Context, fake_kube: FakeKubeAPI, remote: BareRemote, built: str) -> None:
    old = "0" * 40
    a, j = argocd(fake_kube, [old, built]), job_controller(fake_kube)
    ok, events = run(dctx)
    a.stop.set()  # type: ignore[attr-defined]
    j.stop.set()  # type: ignore[attr-defined]
    assert ok, finished(events)
    text = "\n".join(e.text for e in events if isinstance(e, LogLine))
    assert f"revision {built[:7]} Synced, operation Succeeded, health Healthy" in text
    app = fake_kube.get(APP, "Application", "devpi", "argocd")
    assert app["metadata"]["annotations"]["argocd.argoproj.io/refresh"] == "normal"
    # the refresh went in a merge patch of its own, never in the applied body
    applies = [r for r in fake_kube.requests if "applications" in r.path and r.method == "PATCH"]
    kinds = {r.content_type.split(";")[0] for r in applies}
    assert kinds == {"application/apply-patch+yaml", "application/merge-patch+json"}
    for r in applies:
        if "apply-patch" in r.content_type:
            assert b"refresh" not in (r.body or b"")
    assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    assert app["spec"]["source"]["path"] == "k8s" and app["spec"]["destination"]["namespace"] == "devpi"
    assert "resources-finalizer.argocd.argoproj.io" in app["metadata"]["finalizers"]
    job = fake_kube.get("batch/v1", "Job", "devpi-init", "devpi")
    (c,) = job["spec"]["template"]["spec"]["containers"]
    assert c["image"].endswith(f":20261127T100000-{remote.show('k8s/kustomization.yaml').split('-')[-1].strip()}")
    env = {e["name"]: e for e in c["env"]}
    assert env["DEVPI_ROOT_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "devpi-root", "key": "password"}
    assert env["DEVPI_USER_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "devpi-admin", "key": "password"}
    assert job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == "devpi-init"
    # secrets: generated once, kept across re-runs
    root = fake_kube.get("v1", "Secret", "devpi-root", "devpi")["data"]
    server = fake_kube.get("v1", "Secret", "devpi-server-secret", "devpi")["data"]
    assert len(base64.b64decode(server["secret"])) >= 32
    repo = fake_kube.get("v1", "Secret", "devpi-deployment-repo", "argocd")
    assert repo["metadata"]["labels"]["argocd.argoproj.io/secret-type"] == "repository"
    assert base64.b64decode(repo["data"]["type"]) == b"git" and "insecureIgnoreHostKey" not in repo["data"]
    assert base64.b64decode(repo["data"]["sshPrivateKey"]).decode() == Path(dctx.settings.ssh_readonly_key_file or "").read_text()
    fake_kube.clear_log()
    ok, events = run(dctx, force=True)
    assert ok, finished(events)
    assert fake_kube.get("v1", "Secret", "devpi-root", "devpi")["data"] == root
    assert fake_kube.get("v1", "Secret", "devpi-server-secret", "devpi")["data"] == server
    assert [r.path for r in fake_kube.writes() if "jobs" in r.path and r.method == "DELETE"] == []
    # the admin password reaches only its Secret
    for r in fake_kube.requests:
        if "/secrets" not in r.path:
            assert not find(ADMIN, r.body or b""), r.path
    assert not find(ADMIN, "\n".join(str(e) for e in events))


def test_degraded_application_fails_with_argocds_message(dctx: Context, fake_kube: FakeKubeAPI, built: str) -> None:
    a = argocd(fake_kube, [built], health="Degraded", message="Deployment devpi exceeded its progress deadline")
    ok, events = run(dctx)
    a.stop.set()  # type: ignore[attr-defined]
    assert not ok
    fin = finished(events)
    assert "Degraded" in fin.message and "exceeded its progress deadline" in fin.message
    assert fake_kube.get("batch/v1", "Job", "devpi-init", "devpi") is None


def test_old_revision_alone_is_not_enough(dctx: Context, fake_kube: FakeKubeAPI, built: str) -> None:
    a = argocd(fake_kube, ["1" * 40])
    dctx.wait_timeout = 1
    ok, events = run(dctx)
    a.stop.set()  # type: ignore[attr-defined]
    assert not ok and "Timed out" in finished(events).message and built[:7] in finished(events).message


def test_no_application_before_a_built_tag(dctx: Context, fake_kube: FakeKubeAPI, remote: BareRemote, build_settings: Settings) -> None:
    DeployRepo(build_settings.deploy_repo or "", "main").sync(build_settings)
    ok, events = run(dctx)
    assert not ok and "no built image yet" in finished(events).message
    assert fake_kube.get(APP, "Application", "devpi", "argocd") is None


def test_failed_init_job_is_reported(dctx: Context, fake_kube: FakeKubeAPI, built: str) -> None:
    a, j = argocd(fake_kube, [built]), job_controller(fake_kube, ok=False)
    ok, events = run(dctx)
    a.stop.set()  # type: ignore[attr-defined]
    j.stop.set()  # type: ignore[attr-defined]
    assert not ok and "Job devpi/devpi-init failed" in finished(events).message


def test_preflight_needs_argocd_to_know_the_host(dctx: Context, fake_kube: FakeKubeAPI, built: str) -> None:
    fake_kube.delete("v1", "ConfigMap", "argocd-ssh-known-hosts-cm", "argocd")
    fake_kube.clear_log()
    ok, events = run(dctx)
    assert not ok and "does not know github.com's host key" in finished(events).message
    assert "github.com ssh-ed25519" in finished(events).hint
    assert fake_kube.writes() == []


def test_rollback_order_keeps_root_secrets_with_the_data(dctx: Context, fake_kube: FakeKubeAPI, built: str) -> None:
    a, j = argocd(fake_kube, [built]), job_controller(fake_kube)
    assert run(dctx)[0]
    a.stop.set()  # type: ignore[attr-defined]
    j.stop.set()  # type: ignore[attr-defined]
    fake_kube.clear_log()
    ok, events = run(dctx, "rollback")
    assert ok, finished(events)
    deletes = [r.path.split("?")[0].rsplit("/", 2)[-2:] for r in fake_kube.requests if r.method == "DELETE"]
    assert deletes[0] == ["applications", "devpi"]
    assert fake_kube.get(APP, "Application", "devpi", "argocd") is None
    assert fake_kube.get("v1", "Secret", "devpi-root", "devpi") is not None
    assert fake_kube.get("v1", "Secret", "devpi-server-secret", "devpi") is not None
    assert fake_kube.get("v1", "Secret", "devpi-admin", "devpi") is None


def test_application_matches_the_published_argocd_schema(build_settings: Settings) -> None:
    app = with_common_labels(DeployPhase(Context(build_settings)).application())
    wrong = copy.deepcopy(app)
    wrong["spec"]["destination"]["namespace"] = 42
    missing = copy.deepcopy(app)
    del missing["spec"]["destination"]
    results = validate_applications([app, wrong, missing])
    assert results[0] is None, results[0]
    assert results[1] is not None and results[2] is not None
