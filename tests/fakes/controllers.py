"""Test-side stand-ins for the cluster's controllers."""

from __future__ import annotations

import threading

from fakes.kube_api import FakeKubeAPI


class Controllers:
    """Plays the cluster's controllers: binds new PVCs and rolls out new Deployments."""

    def __init__(self, fake: FakeKubeAPI) -> None:
        self.fake = fake
        self.enabled = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="controllers")

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            if self.enabled:
                self.tick()

    def tick(self) -> None:
        for pvc in self.fake.list("v1", "PersistentVolumeClaim"):
            if (pvc.get("status") or {}).get("phase") != "Bound":
                self.fake.make_pvc_bound(pvc["metadata"]["namespace"], pvc["metadata"]["name"])
        for dep in self.fake.list("apps/v1", "Deployment"):
            status = dep.get("status") or {}
            if status.get("observedGeneration") != dep["metadata"].get(
                "generation"
            ) or not status.get("availableReplicas"):
                self.fake.make_deployment_ready(
                    dep["metadata"]["namespace"], dep["metadata"]["name"]
                )

    def __enter__(self) -> Controllers:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
