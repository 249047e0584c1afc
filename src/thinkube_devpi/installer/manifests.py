"""Small builders shared by the phases' manifests (plain dicts, no templating)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

INSTANCE = "devpi"
# What the installer applies itself carries this instance instead of the Application's name
# ("devpi"): Argo CD's label tracking (before 3.0, or chosen in argocd-cm) treats every object
# labelled app.kubernetes.io/instance=<application> as the Application's and prunes it when git
# does not hold it. Pods keep INSTANCE in their (immutable) selectors: objects with an owner
# (ReplicaSets, Pods) are never pruned as top-level resources.
APPLIED_INSTANCE = "thinkube-devpi-installer"


def selector(name: str) -> dict[str, str]:
    """The labels a workload's pods carry and its Service and NetworkPolicy select."""
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": INSTANCE}


def applied_labels(name: str) -> dict[str, str]:
    """Top-level labels of an object the installer applies itself (not through git)."""
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": APPLIED_INSTANCE}


_QUANTITY = re.compile(r"^([+-]?[0-9.]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
_FACTORS = {
    **{s: Decimal(2) ** (10 * (i + 1)) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
    **{s: Decimal(10) ** e for s, e in (("n", -9), ("u", -6), ("m", -3), ("", 0), ("k", 3))},
    **{s: Decimal(10) ** e for s, e in (("M", 6), ("G", 9), ("T", 12), ("P", 15), ("E", 18))},
}
# where Kubernetes keeps resource.Quantity values (ResourceRequirements, PVC capacity, quotas)
QUANTITY_KEYS = frozenset({"requests", "limits", "capacity", "allocatable", "hard"})


def quantity_value(text: object) -> Decimal | None:
    """The amount a Kubernetes quantity stands for (``5120Mi`` and ``5Gi`` are equal)."""
    m = _QUANTITY.match(str(text).strip())
    if not m:
        return None
    try:
        return Decimal(m.group(1)) * _FACTORS[m.group(2) or ""]
    except ArithmeticError:
        return None


def same_quantity(want: object, live: object) -> bool:
    """Whether the server's canonical form of ``want`` is ``live``."""
    a, b = quantity_value(want), quantity_value(live)
    return a is not None and a == b


def meta(name: str, namespace: str | None = None, **labels: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name}
    if namespace:
        out["namespace"] = namespace
    if labels:
        out["labels"] = dict(labels)
    return out


def pod_security(uid: int, *, fs_group: int | None = None) -> dict[str, Any]:
    """Non-root, default seccomp: what the `restricted` Pod Security Standard asks."""
    ctx: dict[str, Any] = {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if fs_group is not None:
        ctx["fsGroup"] = fs_group
        ctx["fsGroupChangePolicy"] = "OnRootMismatch"
    return ctx


def container_security(*, read_only_root: bool = True) -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": read_only_root,
        "capabilities": {"drop": ["ALL"]},
    }


def resources(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> dict[str, Any]:
    return {
        "requests": {"cpu": cpu, "memory": memory},
        "limits": {"cpu": cpu_limit, "memory": memory_limit},
    }


def secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def deployment(
    name: str,
    namespace: str,
    pod_spec: dict[str, Any],
    *,
    recreate: bool = False,
    template_annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A one-replica Deployment whose pods carry ``selector(name)``.

    ``recreate``: never two pods at once (one writer on a ReadWriteOnce volume).
    ``template_annotations``: e.g. a Secret's resourceVersion, so a rotation rolls the pods.
    ``labels``: the Deployment's own labels (default: :func:`applied_labels`).
    """
    template_meta: dict[str, Any] = {"labels": selector(name)}
    if template_annotations:
        template_meta["annotations"] = dict(template_annotations)
    spec: dict[str, Any] = {"replicas": 1}
    if recreate:
        spec["strategy"] = {"type": "Recreate"}
    spec["selector"] = {"matchLabels": selector(name)}
    spec["template"] = {"metadata": template_meta, "spec": pod_spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(name, namespace, **(labels or applied_labels(name))),
        "spec": spec,
    }


def deployment_available(obj: dict[str, Any] | None) -> bool:
    """Rolled out: the newest generation observed, all replicas updated and available."""
    if not obj:
        return False
    status = obj.get("status") or {}
    want = (obj.get("spec") or {}).get("replicas", 1)
    return (
        status.get("observedGeneration", 0) >= obj.get("metadata", {}).get("generation", 0)
        and status.get("updatedReplicas", 0) >= want
        and status.get("availableReplicas", 0) >= want
    )


def deployment_progress(obj: dict[str, Any] | None) -> str:
    if not obj:
        return "absent"
    status = obj.get("status") or {}
    want = (obj.get("spec") or {}).get("replicas", 1)
    return f"{status.get('availableReplicas', 0)}/{want} available"
