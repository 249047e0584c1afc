"""The whole platform of tests/fakes/platform.py, with the real control plane in place of the fake.

What a bare control plane has by itself: the API server (validation, defaulting, canonical
quantities, RBAC, PodSecurity admission, CRD schemas and CEL rules), the controller-manager
(Deployments, ReplicaSets, Jobs, the namespace controller, the PV binder, ServiceAccount tokens),
the scheduler and kwok (pods Running and Ready; Job pods Succeeded), plus the provisioner stand-in.

What it lacks is played by the same stand-ins as on the fake, now through the real API:
- Argo Workflows: a submitted Workflow "runs" by bumping the image tag in the deployment
  repository, as the real bump step does, then is marked Succeeded;
- ArgoCD: the Application "syncs" by applying the repository's k8s/ manifests (its kustomization:
  namespace, labels, image tag) to the real API server, so the real controllers roll the devpi
  Deployment out under PodSecurity; devpi itself runs on 127.0.0.1 from the repository's own
  entrypoint; Health follows the real Deployment's availability;
- the init Job's work: the product's devpi_init runs against that devpi when the Job appears
  (kwok ends the Job's pod with exit code 0: no container runs here);
- Envoy Gateway: each HTTPRoute's parents get Accepted and ResolvedRefs as its controller reports
  them (refused when the listener or a backend Service is missing); its proxy pods are the
  Deployment scripts/cluster.sh makes in envoy-gateway-system (kwok runs them: no proxy listens);
- Keycloak, the dashboard and the host names: the fakes of tests/fakes.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from fakes.gitremote import REPO_URL, BareRemote, key_files
from fakes.hosts import Behaviour, Hosts, dashboard_stand_in, platform_hosts
from fakes.keycloak import FakeKeycloak
from fakes.platform import (
    ADMIN_PASSWORD,
    API,
    DASHBOARD,
    WF,
    DevpiDeployment,
    PlatformControllers,
    secret_values,
    venv_path,
)
from fakes.tls import shared_pki
from real_cluster.harness import RealCluster
from thinkube_devpi.config import Settings
from thinkube_devpi.installer.events import Event
from thinkube_devpi.installer.kube import Kube
from thinkube_devpi.installer.phases.base import Context
from thinkube_devpi.installer.runner import Runner

ARGOCD_MANAGER = "argocd-controller"
GATEWAY = "gateway.networking.k8s.io/v1"
ENVOY_GATEWAY = "gateway.envoyproxy.io/gatewayclass-controller"


def kustomize(files: dict[str, str]) -> list[dict[str, Any]]:
    """What `kustomize build k8s/` makes of the installer's kustomization: the fields it uses
    (namespace, labels without selectors, images' newTag), nothing more."""
    kust = yaml.safe_load(files["k8s/kustomization.yaml"])
    known = {"apiVersion", "kind", "namespace", "labels", "resources", "images"}
    unknown = set(kust) - known
    assert not unknown, f"the stand-in does not render kustomization fields {unknown}"
    images = {i["name"]: i for i in kust.get("images", [])}
    out = []
    for name in kust["resources"]:
        for obj in yaml.safe_load_all(files[f"k8s/{name}"]):
            meta = obj.setdefault("metadata", {})
            if kust.get("namespace"):
                meta["namespace"] = kust["namespace"]
            for group in kust.get("labels", []):
                assert not group.get("includeSelectors") and not group.get("includeTemplates")
                meta.setdefault("labels", {}).update(group["pairs"])
            pod = (obj.get("spec") or {}).get("template", {}).get("spec", {})
            for container in pod.get("containers", []) + pod.get("initContainers", []):
                image = images.get(container["image"].split(":")[0])
                if image:
                    container["image"] = (
                        f"{image.get('newName', container['image'].split(':')[0])}:{image['newTag']}"
                    )
            out.append(obj)
    return out


# Phase 75 runs its backup program in a Job's pod and reads the result from S3: kwok ends pods
# without running them, so here it would wait for a backup nobody made. It runs against the fake
# platform with a real SeaweedFS S3 and a kubelet stand-in (tests/installer/test_p75_backup.py,
# tests/test_docs.py's disaster recovery) instead.
NOT_ON_A_BARE_CONTROL_PLANE = frozenset({"backup"})


def available(cluster: RealCluster, name: str, namespace: str) -> bool:
    dep = cluster.get("apps/v1", "Deployment", name, namespace) or {}
    status = dep.get("status") or {}
    return bool(
        status.get("observedGeneration") == dep.get("metadata", {}).get("generation")
        and status.get("availableReplicas")
        and status.get("updatedReplicas") == dep["spec"].get("replicas", 1)
    )


class RealPlatformControllers(PlatformControllers):
    """The stand-ins of tests/fakes/platform.py for what a bare control plane lacks."""

    fake: Any  # a RealCluster here

    def __init__(
        self, cluster: RealCluster, remote: BareRemote, devpi: DevpiDeployment, namespace: str
    ) -> None:
        super().__init__(cluster, remote, devpi, namespace)  # type: ignore[arg-type]
        self.cluster = cluster
        self.applied: list[dict[str, Any]] = []

    def tick(self) -> None:
        # PVCs, Deployments and Jobs are the real controllers' and kwok's work here
        for route in self.cluster.list(GATEWAY, "HTTPRoute"):
            self.admit_route(route)
        for wf in self.cluster.list(WF, "Workflow", "argo"):
            if wf["metadata"]["uid"] not in self.handled:
                self.handled.add(wf["metadata"]["uid"])
                self.run_build(wf)
        app = self.cluster.get(WF, "Application", "devpi", "argocd")
        if app is not None:  # follow the install wherever it is (tests/e2e picks its namespace)
            self.namespace = app["spec"]["destination"].get("namespace") or self.namespace
        if app is not None and app["metadata"].get("deletionTimestamp"):
            self.finalize(app)
        elif app is not None:
            self.sync(app)
        job = self.cluster.get("batch/v1", "Job", "devpi-init", self.namespace)
        if job is not None and job["metadata"]["uid"] not in self.handled:
            self.handled.add(job["metadata"]["uid"])
            self.run_init(job)

    def run_init(self, job: dict[str, Any]) -> None:
        # devpi_init's effect; the Job's status is the real Job controller's (kwok ends the pod)
        status_patch = self.cluster.patch_status
        self.cluster.patch_status = lambda *a, **k: {}  # type: ignore[method-assign]
        try:
            super().run_init(job)
        finally:
            self.cluster.patch_status = status_patch  # type: ignore[method-assign]

    def admit_route(self, route: dict[str, Any]) -> None:
        """Envoy Gateway's part: report each parent's Accepted and ResolvedRefs on the route (the
        listener must exist on the Gateway, the backend Services in the route's namespace)."""
        meta = route["metadata"]
        generation = meta.get("generation")
        reported = (route.get("status") or {}).get("parents") or []
        if reported and all(
            c.get("observedGeneration") == generation for p in reported for c in p["conditions"]
        ):
            return
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

        def condition(kind: str, ok: bool, reason: str, message: str) -> dict[str, Any]:
            return {
                "type": kind,
                "status": "True" if ok else "False",
                "reason": reason,
                "message": message,
                "observedGeneration": generation,
                "lastTransitionTime": now,
            }

        missing = [
            b["name"]
            for rule in route["spec"].get("rules", [])
            for b in rule.get("backendRefs", [])
            if self.cluster.get("v1", "Service", b["name"], meta["namespace"]) is None
        ]
        parents = []
        for ref in route["spec"].get("parentRefs", []):
            ns = ref.get("namespace", meta["namespace"])
            gateway = self.cluster.get(GATEWAY, "Gateway", ref["name"], ns)
            listeners = [x["name"] for x in (gateway or {}).get("spec", {}).get("listeners", [])]
            section = ref.get("sectionName")
            accepted = gateway is not None and (section is None or section in listeners)
            parents.append(
                {
                    "parentRef": {k: v for k, v in ref.items() if k != "port"},
                    "controllerName": ENVOY_GATEWAY,
                    "conditions": [
                        condition(
                            "Accepted",
                            accepted,
                            "Accepted" if accepted else "NoMatchingParent",
                            "Route is accepted" if accepted else f"no listener {section}",
                        ),
                        condition(
                            "ResolvedRefs",
                            not missing,
                            "ResolvedRefs" if not missing else "BackendNotFound",
                            "Resolved all the Object references for the Route"
                            if not missing
                            else f"Service {', '.join(missing)} not found",
                        ),
                    ],
                }
            )
        self.cluster.patch_status(
            GATEWAY, "HTTPRoute", meta["name"], meta["namespace"], {"parents": parents}
        )

    def finalize(self, app: dict[str, Any]) -> None:
        """ArgoCD's resources-finalizer: delete what the Application deployed, then let it go."""
        finalizers = app["metadata"].get("finalizers") or []
        if "resources-finalizer.argocd.argoproj.io" in finalizers:
            for obj in self.applied:
                meta = obj["metadata"]
                self.cluster.delete(
                    obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace")
                )
            self.applied = []
            self.devpi.stop()
        self.cluster.resource(WF, "Application").patch(
            body={"metadata": {"finalizers": None}},
            name="devpi",
            namespace="argocd",
            content_type="application/merge-patch+json",
        )

    def sync(self, app: dict[str, Any]) -> None:
        head = self.remote.head() or ""
        status = app.get("status") or {}
        synced = (status.get("sync") or {}).get("revision") == head
        if synced and (status.get("health") or {}).get("status") == "Healthy":
            return
        if not synced:
            files = {path: self.remote.show(path) for path in self.remote.files()}
            self.applied = kustomize(files)
            for obj in self.applied:
                meta = obj["metadata"]
                meta.setdefault("annotations", {})["argocd.argoproj.io/tracking-id"] = (
                    f"devpi:{obj['apiVersion'].split('/')[0] if '/' in obj['apiVersion'] else ''}"
                    f"/{obj['kind']}:{meta.get('namespace', '')}/{meta['name']}"
                )
                self.cluster.apply(obj, ARGOCD_MANAGER)
        root = secret_values(self.cluster, "devpi-root", self.namespace).get("password", "")  # type: ignore[arg-type]
        server_secret = secret_values(self.cluster, "devpi-server-secret", self.namespace).get(  # type: ignore[arg-type]
            "secret", ""
        )
        self.devpi.start(
            self.remote.show("entrypoint.sh"),
            self.remote.show("devpi_server_launch.py"),
            root,
            server_secret,
        )
        healthy = available(self.cluster, "devpi", self.namespace)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.cluster.patch_status(
            WF,
            "Application",
            "devpi",
            "argocd",
            {
                "sync": {"status": "Synced", "revision": head},
                # as ArgoCD writes it: the CRD requires operation and startedAt
                "operationState": {
                    "operation": {"sync": {"revision": head}},
                    "phase": "Succeeded",
                    "startedAt": now,
                    "finishedAt": now,
                    "syncResult": {"revision": head},
                },
                "health": {"status": "Healthy" if healthy else "Progressing"},
            },
        )


@dataclass
class RealWorld:
    cluster: RealCluster
    kube: Kube
    kc: FakeKeycloak
    remote: BareRemote
    devpi: DevpiDeployment
    hosts: Hosts
    controllers: RealPlatformControllers
    settings: Settings
    home: Path

    def context(self, **kw: Any) -> Context:
        return Context(self.settings, self.kube, wait_timeout=60, resolve=self.hosts.resolve, **kw)

    def apply(self, wanted: list[str] | None = None, **kw: Any) -> tuple[bool, list[Event]]:
        events: list[Event] = []
        runner = Runner(self.context(), emit=events.append)
        if wanted is None:
            wanted = [
                p.name
                for p in runner.selection(None)
                if p.name not in NOT_ON_A_BARE_CONTROL_PLANE
            ]
        ok = runner.apply(wanted, **kw)
        return ok, events

    def rollback(self, **kw: Any) -> tuple[bool, list[Event]]:
        events: list[Event] = []
        ok = Runner(self.context(**kw), emit=events.append).rollback()
        return ok, events

    def ours(self) -> dict[str, tuple[str, int]]:
        return self.cluster.ours()


def real_settings(keys: dict[str, str], kc: FakeKeycloak, namespace: str, **kw: Any) -> Settings:
    """Settings as on a real thinkube (DESIGN.md section 6): the defaults (Gateway API exposure
    through gateway-system/thinkube-gateway's https listener, Envoy Gateway's proxies in
    envoy-gateway-system) with the stand-ins' addresses."""
    pki = shared_pki()
    values: dict[str, Any] = {
        "domain": "example.com",
        "namespace": namespace,
        "keycloak_url": kc.url,
        "keycloak_ca_file": pki.ca_file,
        "ca_file": pki.ca_file,
        "deploy_repo": REPO_URL,
        "ssh_key_file": keys["id_rw"],
        "ssh_readonly_key_file": keys["id_ro"],
        "ssh_known_hosts_file": keys["known_hosts"],
        "registry_user": "robot-builder",
        "registry_token_file": keys["registry_token"],
        # exposure, gateway, peer and certificate: the defaults, which are thinkube's
    }
    values.update(kw)
    return Settings(**values).validate()


@pytest.fixture
def real_world(
    exclusive: RealCluster,
    tmp_path: Path,
    remote: BareRemote,
    isolated_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Iterator[RealWorld]:
    cluster = exclusive
    keys = key_files(tmp_path)
    namespace = f"devpi-{secrets.token_hex(3)}"
    extra = getattr(request, "param", {}) or {}
    pki = shared_pki()
    devpi = DevpiDeployment(tmp_path / "devpi")
    try:
        with FakeKeycloak(tls=pki) as kc:
            behaviour = Behaviour(issuer=f"{kc.url}/realms/thinkube")
            dashboard = dashboard_stand_in(behaviour)
            with platform_hosts({DASHBOARD: dashboard.server_address[1], API: devpi.port}) as hosts:
                hosts.servers.append(dashboard)
                monkeypatch.setenv("HTTPS_PROXY", hosts.proxy.url)
                monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
                monkeypatch.setenv("KEYCLOAK_ADMIN_PASSWORD", kc.admin_password)
                monkeypatch.setenv("DEVPI_ADMIN_PASSWORD", ADMIN_PASSWORD)
                monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
                # the admin installed the toolkit (scripts/install.sh puts tk-devpi on PATH), so the
                # fish functions phase 88 calls find it; CI runs `<venv>/bin/python -m pytest`
                monkeypatch.setenv("PATH", venv_path())
                settings = real_settings(keys, kc, namespace, **extra)
                cluster.apply(
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": "argocd-ssh-known-hosts-cm", "namespace": "argocd"},
                        "data": {"ssh_known_hosts": Path(keys["known_hosts"]).read_text()},
                    },
                    "argocd-install",
                )
                kube = Kube.connect(cluster.kubeconfig, cache_dir=tmp_path / "cache")
                controllers = RealPlatformControllers(cluster, remote, devpi, namespace)
                with controllers:
                    try:
                        yield RealWorld(
                            cluster,
                            kube,
                            kc,
                            remote,
                            devpi,
                            hosts,
                            controllers,
                            settings,
                            isolated_home,
                        )
                    finally:
                        # leave the shared control plane as it was found, the install and its data
                        # gone, while the stand-ins still run (ArgoCD's finalizer is theirs to clear)
                        Runner(
                            Context(settings, kube, wait_timeout=60, delete_package_data=namespace)
                        ).rollback()
                        cluster.delete("v1", "Namespace", namespace)
    finally:
        devpi.stop()  # also when a stand-in or the rollback failed
