"""A small evaluator of Kubernetes NetworkPolicies (and Cilium's ``fromEntities``), for tests.

Kubernetes' rules (networking.k8s.io/v1, ingress only): a pod that no policy selects for Ingress
admits everything; a selected pod admits a connection when some selecting policy has a rule whose
``from`` peers match the source (an empty ``from`` matches all sources; a ``podSelector`` alone
means pods of the policy's namespace; a ``namespaceSelector`` alone means every pod of the matching
namespaces; both in one peer means both) and whose ``ports`` include the port (no ``ports``: all).
A policy with ``ingress: []`` selects the pod and admits nothing.

Cilium enforces the same objects and its own CiliumNetworkPolicy; the allowed sets add up.
Traffic from Cilium's own gateway/ingress carries the ``reserved:ingress`` identity: it is no
pod, so no Kubernetes peer selects it; only ``fromEntities: [ingress]`` (or ``all``) does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    labels: dict[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Entity:
    """A Cilium reserved identity as a traffic source (``ingress``: Cilium's own gateway)."""

    name: str


Source = Pod | Entity


def selects(selector: JSON | None, labels: dict[str, str]) -> bool:
    selector = selector or {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _ns_labels(ns: str) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": ns}  # set by the API server on every namespace


def _peer_matches(peer: JSON, policy_ns: str, src: Source) -> bool:
    if isinstance(src, Entity):
        return False  # a reserved identity is no pod: no Kubernetes peer names it
    if "ipBlock" in peer:
        return False  # pod-to-pod traffic inside the cluster is not matched by ipBlock here
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], _ns_labels(src.namespace)):
            return False
    elif src.namespace != policy_ns:
        return False
    return "podSelector" not in peer or selects(peer["podSelector"], src.labels)


def _port_ok(ports: list[JSON] | None, port: int) -> bool:
    return not ports or any(int(p.get("port", port)) == port for p in ports)


def allowed(policies: list[JSON], src: Source, dst: Pod, port: int) -> bool:
    selecting = []
    for p in policies:
        meta = p["metadata"]
        if meta.get("namespace") != dst.namespace:
            continue
        if p["kind"] == "NetworkPolicy":
            spec = p["spec"]
            types = spec.get("policyTypes") or ["Ingress"]
            if "Ingress" in types and selects(spec.get("podSelector"), dst.labels):
                selecting.append(p)
        elif (
            p["kind"] == "CiliumNetworkPolicy"
            and selects(p["spec"].get("endpointSelector"), dst.labels)
            and "ingress" in p["spec"]
        ):
            selecting.append(p)
    if not selecting:
        return True
    for p in selecting:
        ns = p["metadata"]["namespace"]
        for rule in p["spec"].get("ingress") or []:
            if p["kind"] == "NetworkPolicy":
                peers = rule.get("from")
                who = not peers or any(_peer_matches(peer, ns, src) for peer in peers)
                if who and _port_ok(rule.get("ports"), port):
                    return True
            else:
                entities = rule.get("fromEntities") or []
                endpoints = rule.get("fromEndpoints")
                if isinstance(src, Entity):
                    who = src.name in entities or "all" in entities
                else:
                    who = "all" in entities or any(
                        selects(e, src.labels) and src.namespace == ns for e in endpoints or []
                    )
                ports = [q for tp in rule.get("toPorts") or [] for q in tp.get("ports") or []]
                if who and _port_ok(ports, port):
                    return True
    return False
