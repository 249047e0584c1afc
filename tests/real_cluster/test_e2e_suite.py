"""tests/e2e, the suite for a real cluster, run against the real control plane.

The stand-ins of tests/real_cluster/world.py play what a bare control plane lacks (Argo, ArgoCD,
devpi's pod, Keycloak, the host names); tests/e2e installs into its own throwaway namespace, proves
it with phase 88's checks and deletes it with its package data. The only checks left out, by name,
are the two that need a real thinkube: DNS records for the dashboard and API hosts.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fakes.platform import API, DASHBOARD
from real_cluster.world import NOT_ON_A_BARE_CONTROL_PLANE, RealWorld

pytestmark = pytest.mark.real_cluster

NEEDS_A_REAL_THINKUBE = [f"{DASHBOARD} resolves", f"{API} resolves"]


def test_the_e2e_suite_passes_against_the_real_control_plane(
    real_world: RealWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from e2e import test_real_cluster as e2e_suite

    config = tmp_path / "e2e.toml"
    config.write_text(real_world.settings.to_toml())
    monkeypatch.setenv("THINKUBE_DEVPI_E2E", "1")
    monkeypatch.setenv("KUBECONFIG", str(real_world.cluster.kubeconfig))
    monkeypatch.setenv("THINKUBE_DEVPI_CONFIG", str(config))
    monkeypatch.setenv("THINKUBE_DEVPI_E2E_SKIP_CHECKS", ",".join(NEEDS_A_REAL_THINKUBE))
    monkeypatch.setenv("THINKUBE_DEVPI_E2E_SKIP_PHASES", ",".join(NOT_ON_A_BARE_CONTROL_PLANE))
    e2e_suite.test_install_test_and_roll_back_in_a_throwaway_namespace(
        dict(os.environ), monkeypatch
    )
    # it cleaned up after itself: no namespace of its own is left but a Terminating one
    left = [
        ns["metadata"]["name"]
        for ns in real_world.cluster.list("v1", "Namespace")
        if ns["metadata"]["name"].startswith("devpi-e2e-")
        and not ns["metadata"].get("deletionTimestamp")
    ]
    assert left == []
