"""A whole thinkube platform on 127.0.0.1, for the lifecycle and resume tests.

The fake API server plays the cluster; threads play its controllers as the real ones would behave:
PVCs bind, Deployments roll out, Argo runs the build (bumping the image tag in the deployment
repository like the real bump step), ArgoCD syncs the pushed revision and "deploys" devpi by running
the repository's own entrypoint (a real devpi-server with the product's flags and the Secrets'
values), and the init Job runs the product's devpi_init against it. A fake Keycloak, an
oauth2-proxy-like dashboard and a CONNECT proxy for the host names complete it.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from fakes.backup_kubelet import BackupKubelet
from fakes.controllers import Controllers
from fakes.gitremote import REPO_URL, BareRemote, key_files
from fakes.hosts import Behaviour, Hosts, dashboard_stand_in, platform_hosts
from fakes.http import free_port
from fakes.keycloak import FakeKeycloak
from fakes.kube_api import FakeKubeAPI
from fakes.s3 import S3Server
from fakes.thinkube import play_gateway, seed_thinkube
from fakes.tls import shared_pki
from thinkube_devpi.config import Settings
from thinkube_devpi.installer import devpi_init
from thinkube_devpi.installer.deployrepo import BUMP_TRAILER
from thinkube_devpi.installer.events import Event
from thinkube_devpi.installer.kube import Kube
from thinkube_devpi.installer.phases.base import Context
from thinkube_devpi.installer.runner import Runner

WF = "argoproj.io/v1alpha1"
FAST = ["--argon2-memory-cost", "8", "--argon2-time-cost", "1", "--argon2-parallelism", "1"]


def secret_values(fake: FakeKubeAPI, name: str, namespace: str) -> dict[str, str]:
    obj = fake.get("v1", "Secret", name, namespace) or {}
    return {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}



def venv_path() -> str:
    """PATH with the test environment's scripts first (devpi-server, tk-devpi): they sit beside
    the interpreter, which need not be on PATH (`<venv>/bin/python -m pytest`)."""
    return f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"

@dataclass
class DevpiDeployment:
    """devpi as the deployment repository's entrypoint runs it, started when ArgoCD syncs."""

    base: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    outside_hosts: str = "devpi-api.example.com,devpi.example.com"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, entrypoint: str, launcher: str, root_password: str, server_secret: str) -> None:
        if self.process is not None:
            return
        for sub in ("data", "tmp", "secret-volume", "home"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        (self.base / "entrypoint.sh").write_text(entrypoint)
        (self.base / "devpi_server_launch.py").write_text(launcher)
        secret_file = self.base / "secret-volume" / "secret"
        secret_file.write_text(server_secret)
        env = {
            # the image has devpi-server's scripts on PATH
            "PATH": venv_path(),
            "HOME": str(self.base / "home"),
            "DEVPI_DATA": str(self.base / "data"),
            "DEVPI_SECRET_SOURCE": str(secret_file),
            "DEVPI_SECRET_DIR": str(self.base / "tmp" / "devpi-secret"),
            "DEVPI_HOST": "127.0.0.1",
            "DEVPI_PORT": str(self.port),
            "DEVPI_OUTSIDE_HOSTS": self.outside_hosts,
            "DEVPISERVER_ROOT_PASSWD": root_password,
            "DEVPI_LAUNCHER": str(self.base / "devpi_server_launch.py"),
        }
        log = (self.base / "server.log").open("ab")
        self.process = subprocess.Popen(
            ["sh", str(self.base / "entrypoint.sh"), *FAST],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.base / "server.log").read_text()[-3000:])
            try:
                if httpx.get(self.url + "+api", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("devpi did not start: " + (self.base / "server.log").read_text()[-3000:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            self.process.wait(10)
        self.process = None


class PlatformControllers(Controllers):
    """Controllers plus Argo Workflows, ArgoCD and the Job controller."""

    def __init__(
        self,
        fake: FakeKubeAPI,
        remote: BareRemote,
        devpi: DevpiDeployment,
        namespace: str = "devpi",
    ) -> None:
        super().__init__(fake)
        self.remote = remote
        self.devpi = devpi
        self.namespace = namespace
        self.handled: set[str] = set()
        self.errors: list[BaseException] = []
        self.builds = 0
        self.devpi_source: tuple[str, str, str, str] | None = None

    def _run(self) -> None:
        while not self._stop.wait(0.03):
            if not self.enabled:
                continue
            try:
                self.tick()
            except BaseException as exc:  # surfaced by __exit__
                self.errors.append(exc)

    def tick(self) -> None:
        # devpi's process first: its Deployment counts as available only once it serves
        app = self.fake.get(WF, "Application", "devpi", "argocd")
        if app is not None:
            self.sync(app)
            self.follow_replicas()
        else:
            self.app_deleted()
        super().tick()
        for ing in self.fake.list("networking.k8s.io/v1", "Ingress", self.namespace):
            if not ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress"):
                self.fake.patch_status(
                    "networking.k8s.io/v1",
                    "Ingress",
                    ing["metadata"]["name"],
                    self.namespace,
                    {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}},
                )
        play_gateway(self.fake, self.namespace)  # Envoy Gateway reports the routes' status
        for wf in self.fake.list(WF, "Workflow", "argo"):
            if wf["metadata"]["uid"] not in self.handled:
                self.handled.add(wf["metadata"]["uid"])
                self.run_build(wf)
        job = self.fake.get("batch/v1", "Job", "devpi-init", self.namespace)
        if job is not None and job["metadata"]["uid"] not in self.handled:
            self.handled.add(job["metadata"]["uid"])
            self.run_init(job)

    def run_build(self, wf: dict[str, Any]) -> None:
        """What the build's steps do to the world: a new image tag committed to the branch."""
        name = wf["metadata"]["name"]
        source = self.remote.head() or ""
        text = self.remote.show("k8s/kustomization.yaml")
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        bumped = re.sub(r"newTag: .*", f"newTag: {stamp}-{source[:7]}", text)
        self.remote.commit_as_human(
            "k8s/kustomization.yaml", bumped, message=f"Build {stamp}\n\n{BUMP_TRAILER}"
        )
        self.builds += 1
        self.fake.patch_status(WF, "Workflow", name, "argo", {"phase": "Succeeded", "nodes": {}})

    def sync(self, app: dict[str, Any]) -> None:
        head = self.remote.head() or ""
        status = app.get("status") or {}
        if (status.get("sync") or {}).get("revision") == head and (status.get("health") or {}).get(
            "status"
        ) == "Healthy":
            return
        root = secret_values(self.fake, "devpi-root", self.namespace).get("password", "")
        server_secret = secret_values(self.fake, "devpi-server-secret", self.namespace).get(
            "secret", ""
        )
        # what Argo CD applies from git that others look at: the devpi Service
        if self.fake.get("v1", "Service", "devpi", self.namespace) is None:
            service = yaml.safe_load(self.remote.show("k8s/service.yaml"))
            self.fake.create(service)
        self.devpi_source = (
            self.remote.show("entrypoint.sh"),
            self.remote.show("devpi_server_launch.py"),
            root,
            server_secret,
        )
        self.devpi.start(*self.devpi_source)
        if self.fake.get("apps/v1", "Deployment", "devpi", self.namespace) is None:
            # what ArgoCD deploys from k8s/ (the process above plays its pod)
            labels = {"app.kubernetes.io/name": "devpi", "app.kubernetes.io/instance": "devpi"}
            self.fake.create(
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": "devpi", "namespace": self.namespace, "labels": labels},
                    "spec": {
                        "replicas": 1,
                        "selector": {"matchLabels": labels},
                        "template": {
                            "metadata": {"labels": labels},
                            "spec": {"containers": [{"name": "devpi", "image": "registry.example.com/thinkube/devpi:built"}]},
                        },
                    },
                },
                manager="argocd-controller",
            )
        self.fake.patch_status(
            WF,
            "Application",
            "devpi",
            "argocd",
            {
                "sync": {"status": "Synced", "revision": head},
                "operationState": {"phase": "Succeeded", "syncResult": {"revision": head}},
                "health": {"status": "Healthy"},
            },
        )

    def follow_replicas(self) -> None:
        """devpi's process follows the Deployment's replicas (a restore scales it to 0 and back)."""
        dep = self.fake.get("apps/v1", "Deployment", "devpi", self.namespace)
        if dep is None or self.devpi_source is None:
            return
        if dep["spec"].get("replicas", 1) == 0:
            self.devpi.stop()
        elif self.devpi.process is None:
            self.devpi.start(*self.devpi_source)

    def app_deleted(self) -> None:
        """ArgoCD's cascade: the Application gone, devpi stops and its Deployment goes; the data
        goes only with the PVC (rollback --delete-package-data)."""
        self.devpi.stop()
        if self.fake.get("apps/v1", "Deployment", "devpi", self.namespace) is not None:
            self.fake.delete("apps/v1", "Deployment", "devpi", self.namespace)
        if self.fake.get("v1", "PersistentVolumeClaim", "devpi-data-pvc", self.namespace) is None:
            import shutil

            shutil.rmtree(self.devpi.base / "data", ignore_errors=True)

    def run_init(self, job: dict[str, Any]) -> None:
        env: dict[str, str] = {}
        (container,) = job["spec"]["template"]["spec"]["containers"]
        for item in container.get("env", []):
            ref = (item.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                env[item["name"]] = secret_values(self.fake, ref["name"], self.namespace)[
                    ref["key"]
                ]
            else:
                env[item["name"]] = item["value"]
        env["DEVPI_URL"] = self.devpi.url  # the Service's address, here
        code = devpi_init.main(env)
        status = (
            {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
            if code == 0
            else {
                "failed": 1,
                "conditions": [
                    {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}
                ],
            }
        )
        self.fake.patch_status("batch/v1", "Job", "devpi-init", self.namespace, status)

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        if self.errors:
            raise self.errors[0]


def seed_cluster(fake: FakeKubeAPI) -> None:
    """What a thinkube cluster has before the install (DESIGN.md section 6, "Real thinkube"):
    Envoy Gateway and thinkube-gateway, the wildcard certificate under its thinkube name, Argo
    Workflows and Argo CD from their Helm charts; no IngressClass."""
    seed_thinkube(fake)


def keycloak_admin_password() -> str:
    return secrets.token_urlsafe(18)


DASHBOARD, API = "devpi.example.com", "devpi-api.example.com"
ADMIN_PASSWORD = 'Adm1n-"pass"-' + "x" * 8


@dataclass
class World:
    fake: FakeKubeAPI
    kube: Kube
    kc: FakeKeycloak
    remote: BareRemote
    devpi: DevpiDeployment
    hosts: Hosts
    controllers: PlatformControllers
    settings: Settings
    home: Path

    def context(self, **kw: Any) -> Context:
        return Context(self.settings, self.kube, wait_timeout=30, resolve=self.hosts.resolve, **kw)

    def apply(self, wanted: list[str] | None = None, **kw: Any) -> tuple[bool, list[Event]]:
        events: list[Event] = []
        ok = Runner(self.context(), emit=events.append).apply(wanted, **kw)
        return ok, events

    def ours(self) -> dict[str, tuple[str, int]]:
        """Every object labelled as ours: 'Kind ns/name' -> (resourceVersion, generation)."""
        out = {}
        for rt in self.fake.resources:
            if "/" in rt.plural or rt.kind in ("Event", "CustomResourceDefinition"):
                continue
            for obj in self.fake.list(rt.api_version, rt.kind):
                meta = obj["metadata"]
                if (meta.get("labels") or {}).get(
                    "app.kubernetes.io/managed-by"
                ) == "thinkube-devpi":
                    key = f"{rt.kind} {meta.get('namespace') or ''}/{meta['name']}"
                    out[key] = (meta["resourceVersion"], meta.get("generation", 0))
        return out


@pytest.fixture
def world(
    fake_kube: FakeKubeAPI,
    kubeconfig: Path,
    tmp_path: Path,
    remote: BareRemote,
    isolated_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    s3_server: S3Server,
    bucket: str,
) -> Iterator[World]:
    keys = key_files(tmp_path)
    seed_cluster(fake_kube)
    fake_kube.clear_log()
    pki = shared_pki()
    devpi = DevpiDeployment(tmp_path / "devpi")
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
            # thinkube's object storage for phase 75 (an S3 server on 127.0.0.1)
            backup = {
                "backup_s3_endpoint": s3_server.endpoint,
                "backup_s3_bucket": bucket,
                "backup_s3_prefix": s3_server.prefix,
            }
            for name, value in backup.items():
                monkeypatch.setenv(f"THINKUBE_DEVPI_{name.upper()}", value)
            monkeypatch.setenv("THINKUBE_DEVPI_S3_ACCESS_KEY", s3_server.access_key)
            monkeypatch.setenv("THINKUBE_DEVPI_S3_SECRET_KEY", s3_server.secret_key)
            settings = Settings(
                **backup,
                domain="example.com",
                keycloak_url=kc.url,
                keycloak_ca_file=pki.ca_file,
                ca_file=pki.ca_file,
                deploy_repo=REPO_URL,
                ssh_key_file=keys["id_rw"],
                ssh_readonly_key_file=keys["id_ro"],
                ssh_known_hosts_file=keys["known_hosts"],
                registry_user="robot-builder",
                registry_token_file=keys["registry_token"],
            ).validate()
            fake_kube.create(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "argocd-ssh-known-hosts-cm", "namespace": "argocd"},
                    "data": {"ssh_known_hosts": Path(keys["known_hosts"]).read_text()},
                }
            )
            kube = Kube.connect(kubeconfig, cache_dir=tmp_path / "cache")
            with PlatformControllers(fake_kube, remote, devpi) as controllers, BackupKubelet(
                fake_kube, devpi.base / "data"
            ):
                yield World(
                    fake_kube, kube, kc, remote, devpi, hosts, controllers, settings, isolated_home
                )
    devpi.stop()



