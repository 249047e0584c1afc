"""Fixtures for the sign-in and exposure phases: a fake cluster, a fake Keycloak, settings."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fakes.keycloak import FakeKeycloak
from fakes.kube_api import FakeKubeAPI
from fakes.tls import shared_pki
from thinkube_devpi.config import Settings
from thinkube_devpi.installer.events import Event
from thinkube_devpi.installer.kube import Kube
from thinkube_devpi.installer.phases.base import Context

DOMAIN = "example.com"


@dataclass
class Env:
    """One test's world: the cluster, Keycloak, settings, a context and the events seen."""

    api: FakeKubeAPI
    kube: Kube
    kc: FakeKeycloak
    settings: Settings
    ctx: Context
    events: list[Event]

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def logs(self) -> list[str]:
        return [getattr(e, "text", "") for e in self.events if getattr(e, "text", "")]

    def secret_data(self, name: str, namespace: str = "devpi") -> dict[str, str]:
        import base64

        obj = self.api.get("v1", "Secret", name, namespace) or {}
        return {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}

    def play_deployment_controller(self, name: str, namespace: str = "devpi") -> None:
        """In a thread: once the Deployment's newest generation is unobserved, make it ready."""
        import threading
        import time

        def run() -> None:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                dep = self.api.get("apps/v1", "Deployment", name, namespace)
                if dep is not None:
                    seen = (dep.get("status") or {}).get("observedGeneration", 0)
                    if seen < dep["metadata"].get("generation", 1):
                        self.api.make_deployment_ready(namespace, name)
                        return
                time.sleep(0.02)

        threading.Thread(target=run, daemon=True).start()

    def rv(self, api_version: str, kind: str, name: str, namespace: str | None = "devpi") -> Any:
        obj = self.api.get(api_version, kind, name, namespace)
        return None if obj is None else obj["metadata"]["resourceVersion"]


def make_settings(kc_url: str, ca_file: str | None, **kw: Any) -> Settings:
    values: dict[str, Any] = {
        "domain": DOMAIN,
        "keycloak_url": kc_url,
        "keycloak_ca_file": ca_file,
    }
    values.update(kw)
    return Settings(**values)


@pytest.fixture
def auth_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    pki = shared_pki()
    with FakeKubeAPI() as api, FakeKeycloak(tls=pki) as kc:
        monkeypatch.setenv("KEYCLOAK_ADMIN_PASSWORD", kc.admin_password)
        # no keyring on test machines: the lookup must not find one by accident
        monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
        api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "devpi"}})
        kube = Kube(api.api_client(), cache_dir=tmp_path / "cache")
        settings = make_settings(kc.url, pki.ca_file)
        env = Env(api, kube, kc, settings, Context(settings, kube=kube), [])
        try:
            yield env
        finally:
            kube.close()
