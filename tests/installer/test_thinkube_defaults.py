"""`config init --domain D` alone, on a cluster shaped like a real thinkube (issue 12, items 5, 7, 9).

The fake cluster is seeded as thinkube's playbooks leave it (see fakes.thinkube): the defaults
must pass preflight there and render what thinkube needs; Argo CD's label tracking must find
nothing of ours to prune; the deploy phase must accept a revision made on top of its push.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from fakes.argo_pods import Cluster, allowed, build_pod, exec_spec, token_account
from fakes.kube_api import FakeKubeAPI
from fakes.platform import World
from fakes.thinkube import EG_NAMESPACE, seed_thinkube
from thinkube_devpi.cli import main
from thinkube_devpi.config import Settings
from thinkube_devpi.installer import deployrepo
from thinkube_devpi.installer.deployrepo import BUMP_TRAILER
from thinkube_devpi.installer.events import PhaseFinished
from thinkube_devpi.installer.manifests import INSTANCE
from thinkube_devpi.installer.phases import PHASES
from thinkube_devpi.installer.phases.base import Context, SecretObject, realize


def invoke(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    result = CliRunner().invoke(main, args, env=env)
    return result.exit_code, result.output


def test_config_init_domain_alone_passes_preflight_and_renders_for_thinkube(
    fake_kube: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    seed_thinkube(fake_kube)
    config = tmp_path / "config.toml"
    env = {"KUBECONFIG": str(kubeconfig), "THINKUBE_DEVPI_CONFIG": str(config)}
    code, out = invoke(["config", "init", "--domain", "example.com"], env)
    assert code == 0, out
    code, out = invoke(["install", "preflight", "-o", "json"], env)
    checks = {c["check"]: c for c in json.loads(out)}
    # everything the cluster decides passes (Keycloak is not reachable from a test)
    for name in (
        "Gateway gateway-system/thinkube-gateway",
        "gateway peer",
        "Argo CD tracking",
        "storage class",
    ):
        assert checks[name]["ok"] is True, (name, checks[name])
    assert "listener https" in checks["Gateway gateway-system/thinkube-gateway"]["detail"]
    assert "envoy-gateway-system" in checks["gateway peer"]["detail"]
    assert checks["Argo CD tracking"]["detail"].startswith("annotation (Argo CD 3.1")
    assert "wildcard TLS Secret" not in checks  # the Gateway holds the certificate
    assert checks["storage class"]["detail"] == "k8s-hostpath"  # no fsGroup warning there
    assert not any("IngressClass" in name for name in checks)

    code, out = invoke(["install", "render", "--out", str(tmp_path / "out")], env)
    assert code == 0, out
    docs = [
        d for p in sorted((tmp_path / "out").iterdir()) for d in yaml.safe_load_all(p.read_text())
    ]
    routes = [d for d in docs if d["kind"] == "HTTPRoute"]
    assert {r["metadata"]["name"] for r in routes} == {"devpi-dashboard", "devpi-api"}
    for r in routes:
        assert r["spec"]["parentRefs"] == [
            {
                "group": "gateway.networking.k8s.io",
                "kind": "Gateway",
                "name": "thinkube-gateway",
                "namespace": "gateway-system",
                "sectionName": "https",
            }
        ]
    for p in (d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] != "ephemeral-redis"):
        peers = [x for rule in p["spec"]["ingress"] for x in rule["from"]]
        assert any(
            x.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
            == EG_NAMESPACE
            for x in peers
        ), p["metadata"]["name"]
    assert not any(d["kind"] == "Ingress" for d in docs)
    # the build, as Argo would run it from what was rendered
    wft = next(d for d in docs if d["kind"] == "WorkflowTemplate")
    cron = next(d for d in docs if d["kind"] == "CronWorkflow")
    cluster = Cluster.of([d for d in docs if d["kind"] in ("ServiceAccount", "Secret")])
    rbac = [d for d in docs if d["kind"] in ("Role", "RoleBinding")]
    for spec in (exec_spec({}, wft), exec_spec(cron["spec"]["workflowSpec"], wft)):
        for step in ("resolve", "build", "bump"):
            pod = build_pod("argo", spec, step, cluster)
            assert token_account(pod, "wait", cluster) is not None
            assert token_account(pod, "main", cluster) is None
    build = next(t for t in wft["spec"]["templates"] if t["name"] == "build")
    assert build["container"]["command"] == ["/kaniko/executor"]
    for t in wft["spec"]["templates"]:
        for c in [t.get("script"), *(t.get("initContainers") or [])]:
            if c and c.get("image", "").startswith("docker.io/alpine/git"):
                assert c["securityContext"]["runAsUser"] == 1000  # alpine/git's git-user
    for sa in ("kaniko-builder", "devpi-build-executor"):
        assert not allowed(rbac, "argo", sa, "create", "argoproj.io", "workflows")


def _argocd_label_tracking_prunes(
    live: list[dict[str, Any]], in_git: set[tuple[str, str, str]], app: str
) -> list[str]:
    """Argo CD's label tracking (gitops-engine): a top-level object (no ownerReferences)
    labelled app.kubernetes.io/instance=<app> belongs to the Application; under automated
    prune, one that git does not hold is deleted."""
    out = []
    for obj in live:
        meta = obj["metadata"]
        if meta.get("ownerReferences"):
            continue
        if (meta.get("labels") or {}).get("app.kubernetes.io/instance") != app:
            continue
        if (obj["kind"], meta.get("namespace", ""), meta["name"]) not in in_git:
            out.append(f"{obj['kind']} {meta.get('namespace', '')}/{meta['name']}")
    return out


def test_argocd_label_tracking_prunes_nothing_the_installer_applies() -> None:
    settings = Settings(domain="example.com").validate()
    applied = []
    for phase_cls in PHASES:
        phase = phase_cls(Context(settings))
        for obj in phase.objects():
            real = realize(obj)
            applied.append(real.skeleton() if isinstance(real, SecretObject) else real)
    git = [
        yaml.safe_load(text)
        for name, text in deployrepo.render_files(settings).items()
        if name.startswith("k8s/") and not name.endswith("kustomization.yaml")
    ]
    in_git = {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]) for d in git}
    # what Argo CD itself applies from git carries the label (it sets it under label tracking)
    assert git and all(d["metadata"]["labels"]["app.kubernetes.io/instance"] == INSTANCE for d in git)
    assert _argocd_label_tracking_prunes(applied, in_git, "devpi") == []
    # the double is not blind: the earlier labels would have lost Redis and oauth2-proxy
    old = [
        {**o, "metadata": {**o["metadata"], "labels": {**(o["metadata"].get("labels") or {}),
                                                        "app.kubernetes.io/instance": INSTANCE}}}
        for o in applied
        if o["kind"] == "Deployment"
    ]
    assert len(_argocd_label_tracking_prunes(old, in_git, "devpi")) == 2


def test_deploy_accepts_a_revision_made_on_top_of_its_push(world: World) -> None:
    """The monitor may push another tag bump while the deploy phase waits for Argo CD."""
    real_sync = world.controllers.sync
    bumped: list[str] = []

    def sync_after_a_monitor_bump(app: dict[str, Any]) -> None:
        if not bumped:
            text = world.remote.show("k8s/kustomization.yaml")
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(time.time() + 60))
            source = world.remote.head() or ""
            new = re.sub(r"newTag: .*", f"newTag: {stamp}-{source[:7]}", text)
            bumped.append(
                world.remote.commit_as_human(
                    "k8s/kustomization.yaml", new, message=f"Build {stamp}\n\n{BUMP_TRAILER}"
                )
            )
        real_sync(app)

    world.controllers.sync = sync_after_a_monitor_bump  # type: ignore[method-assign]
    ok, events = world.apply()
    failed = [e for e in events if isinstance(e, PhaseFinished) and not e.ok]
    assert ok, failed
    app = world.fake.get("argoproj.io/v1alpha1", "Application", "devpi", "argocd")
    assert bumped and app["status"]["sync"]["revision"] == bumped[0]


def test_a_storage_class_that_cannot_apply_fs_group_is_named(
    fake_kube: FakeKubeAPI, kube: Any
) -> None:
    from thinkube_devpi.installer.preflight import storage_check

    seed_thinkube(fake_kube)
    fake_kube.create(
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": "local-path"},
            "provisioner": "rancher.io/local-path",
        }
    )
    settings = Settings(domain="example.com", storage_class="local-path").validate()
    check = storage_check(kube, settings)
    assert check.ok is True and check.detail.startswith("warning: storage class local-path")
    assert "fsGroup" in check.detail


def test_the_helm_named_workflow_controller_is_found_by_its_label(
    fake_kube: FakeKubeAPI, kube: Any
) -> None:
    """thinkube's controller is argo-workflows-workflow-controller: its version (from the image)
    decides between CronWorkflow `schedules` (3.6+) and `schedule`."""
    from thinkube_devpi.installer.phases.p60_build import BuildPhase

    seed_thinkube(fake_kube)
    settings = Settings(domain="example.com").validate()
    phase = BuildPhase(Context(settings, kube=kube))
    assert phase.controller()["metadata"]["name"] == "argo-workflows-workflow-controller"
    assert phase.uses_schedules() is True  # v3.7
    dep = fake_kube.get("apps/v1", "Deployment", "argo-workflows-workflow-controller", "argo")
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = (
        "quay.io/argoproj/workflow-controller:v3.5.8"
    )
    fake_kube.delete("apps/v1", "Deployment", "argo-workflows-workflow-controller", "argo")
    fake_kube.create(
        {k: dep[k] for k in ("apiVersion", "kind", "spec")}
        | {"metadata": {k: dep["metadata"][k] for k in ("name", "namespace", "labels")}}
    )
    assert phase.uses_schedules() is False  # an older controller: `schedule`


def test_new_settings_refuse_bad_values_naming_them() -> None:
    import pytest

    from thinkube_devpi.config import ConfigError

    for field, value, words in (
        ("registry_pull_user", "a b", "registry user name"),
        ("ingress_peer", "calico", "one of namespace, cilium-ingress"),
        ("ingress_peer_labels", "app", "key=value"),
        ("gateway_peer_cidrs", "10.0.0.0/33", "CIDR"),
    ):
        with pytest.raises(ConfigError) as e:
            Settings(domain="example.com", **{field: value}).validate()
        assert e.value.field == field and words in str(e.value), str(e.value)
