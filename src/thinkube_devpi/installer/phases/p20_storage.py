"""Phase 20: the PersistentVolumeClaim that holds the package data."""

from __future__ import annotations

from typing import Any

from thinkube_devpi.config import quantity_bytes
from thinkube_devpi.installer.events import Emit, ObjectRef, State
from thinkube_devpi.installer.manifests import meta
from thinkube_devpi.installer.phases.base import Desired, Phase, PhaseError, PhaseStatus

PVC_NAME = "devpi-data-pvc"
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
# provisioners whose volumes are host paths: the kubelet does not apply fsGroup to them
NO_FS_GROUP = {
    "rancher.io/local-path": "local-path (host directories)",
    "kubernetes.io/no-provisioner": "local volumes",
    "k8s.io/minikube-hostpath": "hostPath",
    "microk8s.io/hostpath": "hostPath",
    "docker.io/hostpath": "hostPath",
}


class StoragePhase(Phase):
    number = 20
    name = "storage"
    title = "Package data volume"
    summary = "PVC devpi-data-pvc, ReadWriteOnce. Never deleted unless asked by name."

    @property
    def pvc_ref(self) -> ObjectRef:
        return ObjectRef("v1", "PersistentVolumeClaim", PVC_NAME, self.settings.namespace)

    def objects(self) -> list[Desired]:
        spec: dict[str, Any] = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": self.settings.storage_size}},
        }
        if self.settings.storage_class:
            spec["storageClassName"] = self.settings.storage_class
        return [
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": meta(PVC_NAME, self.settings.namespace),
                "spec": spec,
            }
        ]

    def preflight(self) -> None:
        kube = self.ctx.require_kube()
        live = kube.get(self.pvc_ref)
        if live is None:
            return
        have = ((live.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage")
        if have and quantity_bytes(self.settings.storage_size) < quantity_bytes(have):
            raise PhaseError(
                f"storage_size: {self.settings.storage_size!r} would shrink {self.pvc_ref}, "
                f"which has {have}.",
                "Kubernetes cannot shrink a volume: set storage_size to at least "
                f"{have} (growing works where the storage class allows expansion).",
            )

    def storage_class(self) -> dict[str, Any] | None:
        """The class the claim gets: storage_class, else the cluster's default."""
        kube = self.ctx.require_kube()
        if self.settings.storage_class:
            return kube.get(ObjectRef("storage.k8s.io/v1", "StorageClass", self.settings.storage_class))
        classes, _ = kube.list("storage.k8s.io/v1", "StorageClass")
        for sc in classes:
            if (sc.get("metadata", {}).get("annotations") or {}).get(DEFAULT_CLASS) == "true":
                return sc
        return None

    def fs_group_warning(self) -> str | None:
        """Why devpi (non-root) may not be able to write its volume, or None."""
        sc = self.storage_class()
        kind = NO_FS_GROUP.get(str((sc or {}).get("provisioner", "")))
        if sc is None or kind is None:
            return None
        return (
            f"storage class {sc['metadata']['name']} ({sc['provisioner']}: {kind}) does not "
            "apply fsGroup: devpi runs as uid 10001 and can write /data only if the host "
            "directory lets it (set storage_class to one that applies fsGroup, or make the "
            "directory writable for 10001)"
        )

    def _binding_mode(self, live: dict[str, Any]) -> str:
        kube = self.ctx.require_kube()
        name = (live.get("spec") or {}).get("storageClassName")
        if name:
            sc = kube.get(ObjectRef("storage.k8s.io/v1", "StorageClass", name))
            return (sc or {}).get("volumeBindingMode", "Immediate")
        classes, _ = kube.list("storage.k8s.io/v1", "StorageClass")
        for sc in classes:
            if (sc.get("metadata", {}).get("annotations") or {}).get(DEFAULT_CLASS) == "true":
                return str(sc.get("volumeBindingMode", "Immediate"))
        return "Immediate"

    def health(self) -> PhaseStatus:
        live = self.ctx.require_kube().get(self.pvc_ref) or {}
        phase = (live.get("status") or {}).get("phase", "Pending")
        if phase == "Bound":
            size = (live.get("status") or {}).get("capacity", {}).get("storage", "")
            return PhaseStatus(State.HEALTHY, f"Bound{f' ({size})' if size else ''}")
        if phase == "Pending" and self._binding_mode(live) == "WaitForFirstConsumer":
            return PhaseStatus(
                State.HEALTHY, "Pending until the first pod uses it (WaitForFirstConsumer)"
            )
        if phase == "Lost":
            return PhaseStatus(State.FAILED, "Lost: the volume behind the claim is gone")
        return PhaseStatus(State.PROGRESSING, f"{phase}: waiting for a volume")

    def wait_ready(self, emit: Emit) -> None:
        warning = self.fs_group_warning()
        if warning:
            self.log(emit, warning, "warning")
        live = self.ctx.require_kube().get(self.pvc_ref) or {}
        if self._binding_mode(live) == "WaitForFirstConsumer":
            self.log(
                emit,
                "The storage class binds on first use: the claim stays Pending until devpi starts.",
            )
            return
        self.wait_for(
            emit,
            self.pvc_ref,
            lambda obj: obj is not None and (obj.get("status") or {}).get("phase") == "Bound",
            f"{self.pvc_ref} to be Bound",
        )

    def keep_reason(self, ref: ObjectRef) -> str:
        if self.ctx.delete_package_data == self.settings.namespace:
            return ""
        return "package data is kept; it goes only when asked for by the namespace name"
