"""Phase 10: the devpi namespace, its ServiceAccount, and the build ServiceAccounts in Argo's."""

from __future__ import annotations

from typing import Any

from thinkube_devpi.installer.events import Emit, ObjectDeleted, ObjectRef
from thinkube_devpi.installer.manifests import meta
from thinkube_devpi.installer.phases.base import Desired, Phase, PhaseError

KANIKO_SA = "kaniko-builder"
MONITOR_SA = "devpi-repo-monitor"


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
    summary = "Namespace for DevPi; least-privilege ServiceAccounts for the build and the monitor."

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
            _service_account(KANIKO_SA, argo),
            _role(KANIKO_SA, argo, [TASK_RESULTS]),
            _binding(KANIKO_SA, argo, KANIKO_SA),
            _service_account(MONITOR_SA, argo),
            _role(
                MONITOR_SA,
                argo,
                [
                    TASK_RESULTS,
                    # the monitor submits a build from the WorkflowTemplate when the source moved
                    {
                        "apiGroups": ["argoproj.io"],
                        "resources": ["workflows"],
                        "verbs": ["create", "get", "list", "watch"],
                    },
                    {
                        "apiGroups": ["argoproj.io"],
                        "resources": ["workflowtemplates"],
                        "verbs": ["get"],
                        "resourceNames": ["devpi-build"],
                    },
                ],
            ),
            _binding(MONITOR_SA, argo, MONITOR_SA),
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
