"""Test-side stand-ins for the cluster's controllers and kubelet.

:class:`ControllerBehaviour` is what the controllers would do to the fake API server's objects
(roll out a Deployment's pods, bind a PVC); :class:`FakeKubeAPI` inherits it, so a test calls
``fake.make_deployment_ready(...)``. :class:`Controllers` runs it in a loop, as a cluster would.
"""

from __future__ import annotations

import copy
import hashlib
import json
import secrets
import threading
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fakes.kube_api import FakeKubeAPI

JSON = dict[str, Any]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ControllerBehaviour:
    """The deployment controller, the kubelet and the volume binder, acting on the fake's store.

    Mixed into :class:`FakeKubeAPI`: it uses the server's lock, store and write paths, so what
    it writes carries resourceVersions, managedFields and watch events like any other write.
    """

    def make_deployment_ready(self, namespace: str, name: str) -> JSON:
        """Play the deployment controller and kubelet: Running, Ready pods and a ready status."""
        rt = self.resource_type("apps/v1", "Deployment")
        prt = self.resource_type("v1", "Pod")
        with self._lock:
            dep = self._require(rt, namespace, name)
            spec = dep.get("spec") or {}
            replicas = int(spec.get("replicas", 1))
            template = spec.get("template") or {}
            tmpl_hash = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[
                :10
            ]
            uid = dep["metadata"]["uid"]
            owned = [
                p
                for (pns, _), p in sorted(self._store(prt).items())
                if pns == namespace
                and any(o.get("uid") == uid for o in p["metadata"].get("ownerReferences") or [])
            ]
            for p in owned:
                if p["metadata"].get("labels", {}).get("pod-template-hash") != tmpl_hash:
                    self._delete(prt, p, "Background")
            current = [
                p
                for p in owned
                if p["metadata"].get("labels", {}).get("pod-template-hash") == tmpl_hash
            ]
            for p in current[replicas:]:
                self._delete(prt, p, "Background")
            for _ in range(len(current), replicas):
                self._create_ready_pod(dep, template, tmpl_hash)
            now = _now()
            status = {
                "observedGeneration": dep["metadata"].get("generation", 1),
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
                "conditions": [
                    {
                        "type": "Available",
                        "status": "True",
                        "lastUpdateTime": now,
                        "lastTransitionTime": now,
                        "reason": "MinimumReplicasAvailable",
                        "message": "Deployment has minimum availability.",
                    },
                    {
                        "type": "Progressing",
                        "status": "True",
                        "lastUpdateTime": now,
                        "lastTransitionTime": now,
                        "reason": "NewReplicaSetAvailable",
                        "message": f'ReplicaSet "{name}-{tmpl_hash}" has successfully progressed.',
                    },
                ],
            }
            if replicas == 0:
                for k in ("readyReplicas", "availableReplicas", "updatedReplicas"):
                    status.pop(k)
            new = copy.deepcopy(dep)
            new["status"] = status
            return copy.deepcopy(
                self._update(rt, dep, new, "kube-controller-manager", "Update", "status")
            )

    def _create_ready_pod(self, dep: JSON, template: JSON, tmpl_hash: str) -> JSON:
        prt = self.resource_type("v1", "Pod")
        ns = dep["metadata"]["namespace"]
        suffix = "".join(secrets.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
        labels = dict((template.get("metadata") or {}).get("labels") or {})
        labels["pod-template-hash"] = tmpl_hash
        pod_spec = copy.deepcopy(template.get("spec") or {})
        self._ip_counter += 1
        now = _now()
        pod: JSON = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{dep['metadata']['name']}-{tmpl_hash}-{suffix}",
                "namespace": ns,
                "labels": labels,
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": dep["metadata"]["name"],
                        "uid": dep["metadata"]["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": pod_spec,
            "status": {
                "phase": "Running",
                "podIP": f"10.244.0.{self._ip_counter % 250}",
                "hostIP": "192.168.49.2",
                "startTime": now,
                "conditions": [
                    {"type": t, "status": "True", "lastTransitionTime": now}
                    for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
                ],
                "containerStatuses": [
                    {
                        "name": c.get("name", ""),
                        "image": c.get("image", ""),
                        "imageID": f"{c.get('image', '')}@sha256:{'0' * 64}",
                        "ready": True,
                        "started": True,
                        "restartCount": 0,
                        "state": {"running": {"startedAt": now}},
                        "containerID": f"containerd://{uuid.uuid4().hex}",
                    }
                    for c in pod_spec.get("containers") or []
                ],
            },
        }
        return self._create(prt, ns, pod, "kube-controller-manager", keep_status=True)

    def make_pvc_bound(self, namespace: str, name: str) -> JSON:
        rt = self.resource_type("v1", "PersistentVolumeClaim")
        with self._lock:
            pvc = self._require(rt, namespace, name)
            spec = pvc.get("spec") or {}
            new = copy.deepcopy(pvc)
            new.setdefault("spec", {}).setdefault("volumeName", f"pvc-{pvc['metadata']['uid']}")
            new = self._update(rt, pvc, new, "kube-controller-manager", "Update", "")
            bound = copy.deepcopy(new)
            bound["status"] = {
                "phase": "Bound",
                "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                "capacity": {
                    "storage": ((spec.get("resources") or {}).get("requests") or {}).get(
                        "storage", "1Gi"
                    )
                },
            }
            return copy.deepcopy(
                self._update(rt, new, bound, "kube-controller-manager", "Update", "status")
            )



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
