from __future__ import annotations

from pathlib import Path

import pytest

from fakes.kube_api import FakeKubeAPI
from thinkube_devpi.config import Settings
from thinkube_devpi.installer.kube import Kube
from thinkube_devpi.installer.phases.base import Context


@pytest.fixture
def settings() -> Settings:
    return Settings(domain="example.com").validate()


@pytest.fixture
def kube(fake_kube: FakeKubeAPI, kubeconfig: Path, tmp_path: Path) -> Kube:
    return Kube.connect(kubeconfig, cache_dir=tmp_path / "cache")


@pytest.fixture
def ctx(settings: Settings, kube: Kube) -> Context:
    return Context(settings, kube, wait_timeout=10)
