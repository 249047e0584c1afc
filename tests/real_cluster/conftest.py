"""Fixtures for the tests against the real control plane (scripts/cluster.sh).

The tests here run when the binaries are built (`bash scripts/cluster.sh build`) and skip with that
advice otherwise; with THINKUBE_DEVPI_REAL_CLUSTER=required (CI) a missing build fails them instead.
The first test that needs the control plane starts it unless it already runs; the pytest session
that started it stops it at its end (tests/conftest.py), so no process is left behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from real_cluster.harness import RealCluster, binaries_present, cluster_dir, ensure_up, file_lock

BUILD_HINT = "the real control plane is not built: bash scripts/cluster.sh build"


@pytest.fixture(scope="session")
def cluster() -> RealCluster:
    if not binaries_present():
        if os.environ.get("THINKUBE_DEVPI_REAL_CLUSTER") == "required":
            pytest.fail(f"THINKUBE_DEVPI_REAL_CLUSTER=required, but {BUILD_HINT}")
        pytest.skip(BUILD_HINT)
    ensure_up()
    return RealCluster(cluster_dir())


@pytest.fixture
def exclusive(cluster: RealCluster) -> Iterator[RealCluster]:
    """For tests that use cluster-wide names (Argo's and ArgoCD's objects): one at a time, across
    the pytest-xdist workers."""
    with file_lock("install"):
        yield cluster


from real_cluster.world import real_world  # noqa: E402, F401
