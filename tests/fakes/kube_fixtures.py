"""pytest fixtures for the fake kube-apiserver; import them into a conftest.py:

from fakes.kube_fixtures import fake_kube, kubeconfig  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fakes.kube_api import FakeKubeAPI


@pytest.fixture
def fake_kube() -> Iterator[FakeKubeAPI]:
    """A started FakeKubeAPI with all optional CRD groups (argo, argocd, gateway)."""
    with FakeKubeAPI() as fake:
        yield fake


@pytest.fixture
def kubeconfig(fake_kube: FakeKubeAPI, tmp_path: Path) -> Path:
    """A kubeconfig for ``fake_kube`` (context "fake", bearer token) in tmp_path."""
    return fake_kube.write_kubeconfig(tmp_path / "kubeconfig")
