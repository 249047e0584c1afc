"""Phase 10: the devpi namespace, its ServiceAccount, and the build ServiceAccounts in Argo's."""

from __future__ import annotations

from typing import Any

from thinkube_devpi.installer.events import Emit, ObjectDeleted, ObjectRef
from thinkube_devpi.installer.kube import is_adopted, is_ours
from thinkube_devpi.installer.manifests import meta
from thinkube_devpi.installer.phases.base import Desired, Phase, PhaseError

# The build pods' own account (the one the repository's Dockerfile runs under): no rights, no
# token. Argo's init/wait containers use the executor account's token instead, mounted into them
# alone (Argo's hardened form: workflow automountServiceAccountToken false + executor account).
KANIKO_SA = "kaniko-builder"
EXECUTOR_SA = "devpi-build-executor"
# the token Secret Argo looks for when the account lists none (util/secrets: "<sa>.service-account-token")
EXECUTOR_TOKEN = f"{EXECUTOR_SA}.service-account-token"
# accounts of earlier releases: removed on apply when they are ours (the monitor's could create Workflows)
RETIRED_SA = "devpi-repo-monitor"


def _role(name: str, namespace: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": meta(name, namespace),
        "rules": rules,
    }


def _binding(name: str, namespace: str, sa: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": meta(name, namespace),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": namespace}],
    }


def _service_account(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": meta(name, namespace),
        "automountServiceAccountToken": False,
    }


def _token_secret(sa: str, name: str, namespace: str) -> dict[str, Any]:
    """A long-lived token for ``sa`` (Kubernetes >= 1.24 makes none by itself); the token
    controller fills in ``data``."""
    metadata = meta(name, namespace)
    metadata["annotations"] = {"kubernetes.io/service-account.name": sa}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/service-account-token",
        "metadata": metadata,
    }


# What an Argo step's executor needs to report its outputs, and nothing more.
TASK_RESULTS = {
    "apiGroups": ["argoproj.io"],
    "resources": ["workflowtaskresults"],
    "verbs": ["create", "patch"],
}


class NamespacePhase(Phase):
    number = 10
    name = "namespace"
    title = "Namespace and RBAC"
    summary = (
        "Namespace for DevPi; the build pods' ServiceAccount (no rights, no token) and Argo's "
        "executor account (step results only)."
    )

    def retired(self) -> list[dict[str, Any]]:
        """Objects earlier releases made that this one no longer wants (deleted when ours)."""
        argo = self.settings.argo_namespace
        return [
            _binding(RETIRED_SA, argo, RETIRED_SA),
            _role(RETIRED_SA, argo, []),
            _service_account(RETIRED_SA, argo),
            _binding(KANIKO_SA, argo, KANIKO_SA),
            _role(KANIKO_SA, argo, []),
        ]

    def apply(self, emit: Emit) -> None:
        super().apply(emit)
        kube = self.ctx.require_kube()
        for obj in self.retired():
            live = kube.get(ObjectRef.of(obj))
            if live is not None and is_ours(live) and not is_adopted(live):
                kube.delete(ObjectRef.of(obj))
                emit(ObjectDeleted(self.name, ObjectRef.of(obj), "deleted", "no longer used"))

    def objects(self) -> list[Desired]:
        ns = self.settings.namespace
        argo = self.settings.argo_namespace
        return [
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": meta(
                    ns,
                    **{
                        # every pod in it runs as the restricted profile asks
                        "pod-security.kubernetes.io/enforce": "restricted",
                        "pod-security.kubernetes.io/enforce-version": "latest",
                    },
                ),
            },
            _service_account("devpi", ns),
            # the pods' account: no Role at all (it runs the repository's Dockerfile)
            _service_account(KANIKO_SA, argo),
            # Argo's executor (init/wait containers): reports step results, nothing more
            _service_account(EXECUTOR_SA, argo),
            _token_secret(EXECUTOR_SA, EXECUTOR_TOKEN, argo),
            _role(EXECUTOR_SA, argo, [TASK_RESULTS]),
            _binding(EXECUTOR_SA, argo, EXECUTOR_SA),
        ]

    def preflight(self) -> None:
        kube = self.ctx.require_kube()
        argo = self.settings.argo_namespace
        if kube.get(ObjectRef("v1", "Namespace", argo)) is None:
            raise PhaseError(
                f"argo_namespace: namespace {argo!r} does not exist.",
                "Is Argo Workflows installed? Set argo_namespace to the namespace it runs in.",
            )

    def keep_reason(self, ref: ObjectRef) -> str:
        """The namespace stays while it holds the package data (unless that goes too)."""
        kube = self.ctx.kube
        if ref.kind != "Namespace" or kube is None:
            return ""
        if self.ctx.delete_package_data == self.settings.namespace:
            return ""
        claims, _ = kube.list("v1", "PersistentVolumeClaim", self.settings.namespace)
        if claims:
            names = ", ".join(c["metadata"]["name"] for c in claims)
            return f"it still holds PersistentVolumeClaim {names} (package data)"
        return ""

    def rollback(self, emit: Emit) -> None:
        kube = self.ctx.require_kube()
        ns = self.settings.namespace
        objs = self.objects()
        namespace_ref = ObjectRef("v1", "Namespace", ns)
        self.delete_objects(reversed(objs[1:]), emit)
        for obj in self.retired():
            if kube.get(ObjectRef.of(obj)) is not None:
                self.delete_objects([obj], emit)
        if kube.get(namespace_ref) is None:
            emit(ObjectDeleted(self.name, namespace_ref, "absent"))
            return
        claims, _ = kube.list("v1", "PersistentVolumeClaim", ns)
        if claims:
            names = ", ".join(c["metadata"]["name"] for c in claims)
            emit(
                ObjectDeleted(
                    self.name,
                    namespace_ref,
                    "kept",
                    f"it still holds PersistentVolumeClaim {names} (package data)",
                )
            )
            return
        self.delete_objects([objs[0]], emit)
        # The namespace controller deletes what it holds first (the volume too, when asked for):
        # the rollback is done when the namespace is gone, not while it is Terminating.
        live = kube.get(namespace_ref)
        if live is not None and live["metadata"].get("deletionTimestamp"):
            self.wait_for(emit, namespace_ref, lambda o: o is None, f"Namespace {ns} to be gone")
