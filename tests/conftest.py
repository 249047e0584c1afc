"""Shared fixtures. Fakes live in tests/fakes and are imported as `fakes.*`."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakes.kube_api import FakeKubeAPI


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own HOME and XDG dirs: nothing touches the real user's files."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for var, sub in (
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_CACHE_HOME", ".cache"),
        ("XDG_STATE_HOME", ".local/state"),
        ("XDG_DATA_HOME", ".local/share"),
    ):
        monkeypatch.setenv(var, str(home / sub))
    for var in list(os.environ):
        if var.startswith("THINKUBE_DEVPI_") or var in ("KUBECONFIG", "DEVPI_USER", "DEVPI_INDEX"):
            monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def fake_kube() -> Iterator[FakeKubeAPI]:
    """A fake kube-apiserver on 127.0.0.1 set up like a thinkube cluster: the Argo, ArgoCD and
    Gateway API CRDs, and the namespaces Argo Workflows and ArgoCD run in."""
    with FakeKubeAPI() as fake:
        for ns in ("argo", "argocd"):
            fake.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        fake.clear_log()
        yield fake


@pytest.fixture
def kubeconfig(fake_kube: FakeKubeAPI, tmp_path: Path) -> Path:
    return fake_kube.write_kubeconfig(tmp_path / "kubeconfig")


class Controllers:
    """Plays the cluster's controllers: binds new PVCs and rolls out new Deployments."""

    def __init__(self, fake: FakeKubeAPI) -> None:
        self.fake = fake
        self.enabled = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="controllers")

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            if not self.enabled:
                continue
            for pvc in self.fake.list("v1", "PersistentVolumeClaim"):
                if (pvc.get("status") or {}).get("phase") != "Bound":
                    self.fake.make_pvc_bound(pvc["metadata"]["namespace"], pvc["metadata"]["name"])
            for dep in self.fake.list("apps/v1", "Deployment"):
                status = dep.get("status") or {}
                if status.get("observedGeneration") != dep["metadata"].get("generation") or not status.get(
                    "availableReplicas"
                ):
                    self.fake.make_deployment_ready(dep["metadata"]["namespace"], dep["metadata"]["name"])

    def __enter__(self) -> Controllers:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


@pytest.fixture
def controllers(fake_kube: FakeKubeAPI) -> Iterator[Controllers]:
    with Controllers(fake_kube) as c:
        yield c
