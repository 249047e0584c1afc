"""Shared fixtures. Fakes live in tests/fakes and are imported as `fakes.*`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakes.auth_cluster import auth_env  # noqa: F401
from fakes.controllers import Controllers
from fakes.devpi_server import *  # noqa: F403
from fakes.gitremote import remote  # noqa: F401
from fakes.keycloak import fake_keycloak  # noqa: F401
from fakes.keyring_env import *  # noqa: F403
from fakes.kube_api import FakeKubeAPI
from fakes.platform import world  # noqa: F401
from fakes.s3 import bucket, s3_server  # noqa: F401


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
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


@pytest.fixture
def controllers(fake_kube: FakeKubeAPI) -> Iterator[Controllers]:
    with Controllers(fake_kube) as c:
        yield c
