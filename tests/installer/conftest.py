from __future__ import annotations

from pathlib import Path

import pytest

from fakes.kube_api import FakeKubeAPI
from thinkube_devpi.config import Settings
from thinkube_devpi.installer.kube import Kube
from thinkube_devpi.installer.phases.base import Context


@pytest.fixture
def kube(fake_kube: FakeKubeAPI, kubeconfig: Path, tmp_path: Path) -> Kube:
    return Kube.connect(kubeconfig, cache_dir=tmp_path / "cache")


@pytest.fixture
def ctx(settings: Settings, kube: Kube) -> Context:
    return Context(settings, kube, wait_timeout=10)


from fakes.gitremote import REPO_URL, key_files  # noqa: E402


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, str]:
    return key_files(tmp_path)


@pytest.fixture
def build_settings(keys: dict[str, str]) -> Settings:
    """Settings with the deployment repository, keys and registry credentials filled in."""
    return Settings(
        domain="example.com",
        deploy_repo=REPO_URL,
        ssh_key_file=keys["id_rw"],
        ssh_readonly_key_file=keys["id_ro"],
        ssh_known_hosts_file=keys["known_hosts"],
        registry_user="robot-builder",
        registry_token_file=keys["registry_token"],
    ).validate()
