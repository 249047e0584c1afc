"""The fake API server's model: the resource types it serves, and small object helpers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

JSON = dict[str, Any]
FieldPath = tuple[str, ...]

K8S_VERSION = "1.31"
ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
READ_VERBS = ("get", "list", "watch")
APPLY_CT = "application/apply-patch+yaml"
MERGE_CT = "application/merge-patch+json"
JSON_PATCH_CT = "application/json-patch+json"
SMP_CT = "application/strategic-merge-patch+json"
# metadata fields the server owns; never part of a manager's field set
SYSTEM_META = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
)


@dataclass(frozen=True)
class ResourceType:
    """One served resource (a row of an APIResourceList)."""

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    status: bool = False  # has a status subresource
    generation: bool = False  # server keeps metadata.generation
    builtin: bool = True  # validated with kubernetes-validate; strategic merge allowed
    subresources: tuple[str, ...] = ()  # extra read-only subresources, e.g. ("log",)
    verbs: tuple[str, ...] = ALL_VERBS
    categories: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``deployments.apps`` as in server messages (``pods`` for core)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def kind_qualified(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind


def _rt(
    group: str, version: str, plural: str, kind: str, namespaced: bool = True, **kw: Any
) -> ResourceType:
    return ResourceType(group, version, plural, kind.lower(), kind, namespaced, **kw)


BUILTIN_RESOURCES: tuple[ResourceType, ...] = (
    _rt("", "v1", "namespaces", "Namespace", False, short_names=("ns",), status=True),
    _rt("", "v1", "serviceaccounts", "ServiceAccount", short_names=("sa",)),
    _rt("", "v1", "secrets", "Secret"),
    _rt("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    _rt("", "v1", "services", "Service", short_names=("svc",), status=True, categories=("all",)),
    _rt(
        "",
        "v1",
        "pods",
        "Pod",
        short_names=("po",),
        status=True,
        subresources=("log",),
        categories=("all",),
    ),
    _rt(
        "",
        "v1",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        short_names=("pvc",),
        status=True,
    ),
    _rt("", "v1", "events", "Event", short_names=("ev",)),
    _rt(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        short_names=("deploy",),
        status=True,
        generation=True,
        categories=("all",),
    ),
    _rt("batch", "v1", "jobs", "Job", status=True, generation=True, categories=("all",)),
    _rt(
        "batch", "v1", "cronjobs", "CronJob", short_names=("cj",), status=True, generation=True,
        categories=("all",),
    ),
    _rt("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    _rt("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    _rt("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    _rt("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    _rt(
        "networking.k8s.io",
        "v1",
        "ingresses",
        "Ingress",
        short_names=("ing",),
        status=True,
        generation=True,
    ),
    _rt(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "NetworkPolicy",
        short_names=("netpol",),
        generation=True,
    ),
    _rt("networking.k8s.io", "v1", "ingressclasses", "IngressClass", False, generation=True),
    _rt("storage.k8s.io", "v1", "storageclasses", "StorageClass", False, short_names=("sc",)),
    _rt(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        short_names=("crd", "crds"),
        status=True,
        generation=True,
        verbs=READ_VERBS,
    ),
)


def _cr(
    group: str, version: str, plural: str, kind: str, namespaced: bool = True, **kw: Any
) -> ResourceType:
    return _rt(group, version, plural, kind, namespaced, builtin=False, generation=True, **kw)


CRD_SETS: dict[str, tuple[ResourceType, ...]] = {
    "argo": (
        _cr("argoproj.io", "v1alpha1", "workflows", "Workflow", short_names=("wf",)),
        _cr(
            "argoproj.io",
            "v1alpha1",
            "workflowtemplates",
            "WorkflowTemplate",
            short_names=("wftmpl",),
        ),
        _cr(
            "argoproj.io",
            "v1alpha1",
            "cronworkflows",
            "CronWorkflow",
            short_names=("cwf", "cronwf"),
        ),
        _cr("argoproj.io", "v1alpha1", "workflowtaskresults", "WorkflowTaskResult"),
    ),
    "argocd": (
        _cr("argoproj.io", "v1alpha1", "applications", "Application", short_names=("app", "apps")),
    ),
    "gateway": (
        _cr(
            "gateway.networking.k8s.io",
            "v1",
            "gatewayclasses",
            "GatewayClass",
            False,
            short_names=("gc",),
            status=True,
        ),
        _cr(
            "gateway.networking.k8s.io",
            "v1",
            "gateways",
            "Gateway",
            short_names=("gtw",),
            status=True,
        ),
        _cr("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute", status=True),
    ),
    # Cilium, thinkube's CNI
    "cilium": (
        _cr("cilium.io", "v2", "ciliumnetworkpolicies", "CiliumNetworkPolicy", short_names=("cnp",)),
    ),
}


# --------------------------------------------------------------------------------------------
# small helpers


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meta(obj: JSON) -> JSON:
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = {}
        obj["metadata"] = m
    return m


def _dig(obj: Any, dotted: str) -> Any:
    cur = obj
    for part in dotted.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def _check_name(rt: ResourceType, name: str) -> str | None:
    if rt.plural == "namespaces":
        if len(name) > 63 or not _DNS1123_LABEL.match(name):
            return (
                f'Invalid value: "{name}": a lowercase RFC 1123 label must consist of lower case '
                "alphanumeric characters or '-', and must start and end with an alphanumeric "
                "character (e.g. 'my-name',  or '123-abc', regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
            )
        return None
    if rt.plural == "services":
        if len(name) > 63 or not _DNS1035_LABEL.match(name):
            return (
                f'Invalid value: "{name}": a DNS-1035 label must consist of lower case '
                "alphanumeric characters or '-', start with an alphabetic character, and end "
                "with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
                "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
            )
        return None
    if rt.group.startswith("rbac."):
        # RBAC names are path segments: anything without '/' or '%'
        return None if name and "/" not in name and "%" not in name else f'Invalid value: "{name}"'
    if len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name):
        return (
            f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
            "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
            "character (e.g. 'example.com', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        )
    return None


def _check_labels(labels: Any, where: str) -> list[tuple[str, str]]:
    errs: list[tuple[str, str]] = []
    if not isinstance(labels, dict):
        return errs
    for k, v in labels.items():
        prefix, _, nm = k.rpartition("/")
        if (prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix))) or (
            len(nm) > 63 or not _QUALIFIED_NAME.match(nm)
        ):
            errs.append(
                (
                    where,
                    f'Invalid value: "{k}": name part must consist of alphanumeric '
                    "characters, '-', '_' or '.', and must start and end with an alphanumeric "
                    "character",
                )
            )
        if not isinstance(v, str) or len(v) > 63 or not _LABEL_VALUE.match(v):
            errs.append(
                (
                    where,
                    f'Invalid value: "{v}": a valid label must be an empty string or '
                    "consist of alphanumeric characters, '-', '_' or '.', and must start and "
                    "end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
                    "'12345', regex used for validation is "
                    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
                )
            )
    return errs
