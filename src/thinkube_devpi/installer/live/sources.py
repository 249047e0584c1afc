"""What the live status watches: one :class:`Source` per list+watch, and the snapshot it builds."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from thinkube_devpi.installer.live.rows import (
    BUILD_PREFIX,
    MAX_EVENTS,
    WORKFLOW_LABEL,
    ClusterSnapshot,
    Row,
    Table,
    application_row,
    deployment_row,
    event_row,
    httproute_row,
    ingress_row,
    job_row,
    metadata,
    pod_row,
    pvc_row,
    service_row,
    workflow_row,
)

if TYPE_CHECKING:
    from thinkube_devpi.config import Settings


@dataclass(frozen=True)
class Source:
    """One list+watch: what to watch, how to show it."""

    kind: str  # the table's name, also the Kubernetes kind
    api_version: str
    namespace: str | None
    columns: tuple[str, ...]
    to_row: Callable[[dict[str, Any]], Row]
    name: str | None = None  # a single object (the ArgoCD Application)
    label_selector: str | None = None
    keep: Callable[[dict[str, Any]], bool] | None = None


def sources(settings: Settings) -> list[Source]:
    """What the cluster view shows for these settings."""
    ns = settings.namespace
    argo = settings.argo_namespace

    def build_only(obj: dict[str, Any]) -> bool:
        labels = metadata(obj).get("labels") or {}
        name = labels.get(WORKFLOW_LABEL) or metadata(obj).get("name", "")
        return str(name).startswith(BUILD_PREFIX)

    return [
        Source("Pod", "v1", ns, POD_COLUMNS, pod_row),
        Source(
            "Pod", "v1", argo, POD_COLUMNS, pod_row, label_selector=WORKFLOW_LABEL, keep=build_only
        ),
        Source(
            "Deployment",
            "apps/v1",
            ns,
            ("READY", "UP-TO-DATE", "AVAILABLE", "STATUS"),
            deployment_row,
        ),
        Source(
            "PersistentVolumeClaim",
            "v1",
            ns,
            ("STATUS", "VOLUME", "CAPACITY", "ACCESS", "CLASS"),
            pvc_row,
        ),
        Source("Service", "v1", ns, ("TYPE", "CLUSTER-IP", "PORTS"), service_row),
        Source("Ingress", "networking.k8s.io/v1", ns, ("CLASS", "HOSTS", "ADDRESS"), ingress_row),
        *(
            [
                Source(
                    "HTTPRoute",
                    "gateway.networking.k8s.io/v1",
                    ns,
                    ("HOSTNAMES", "PARENT", "STATUS"),
                    httproute_row,
                )
            ]
            if settings.exposure == "gateway"
            else []
        ),
        Source("Job", "batch/v1", ns, ("COMPLETIONS", "STATUS"), job_row),
        Source(
            "Workflow",
            "argoproj.io/v1alpha1",
            argo,
            ("PHASE", "PROGRESS", "MESSAGE"),
            workflow_row,
            keep=build_only,
        ),
        Source(
            "Application",
            "argoproj.io/v1alpha1",
            settings.argocd_namespace,
            ("SYNC", "HEALTH", "OPERATION", "REVISION"),
            application_row,
            name="devpi",
        ),
        Source("Event", "v1", ns, EVENT_COLUMNS, event_row),
    ]


POD_COLUMNS = ("READY", "STATUS", "RESTARTS", "NODE")  # k9s shows the IP in its wide view
EVENT_COLUMNS = ("TYPE", "REASON", "OBJECT", "COUNT", "MESSAGE")


def build_snapshot(
    srcs: list[Source],
    objects: list[dict[str, dict[str, Any]]],
    errors: list[str],
    *,
    seq: int = 0,
    at: float | None = None,
) -> ClusterSnapshot:
    """A snapshot from each source's objects (by key) and errors; sources of one kind merge."""
    by_kind: dict[str, tuple[Source, list[Row], list[str], list[str]]] = {}
    events: list[Row] = []
    event_errors: list[str] = []
    for src, objs, error in zip(srcs, objects, errors, strict=True):
        rows = [src.to_row(o) for o in objs.values() if src.keep is None or src.keep(o)]
        if src.kind == "Event":
            events += rows
            if error:
                event_errors.append(error)
            continue
        entry = by_kind.setdefault(src.kind, (src, [], [], []))
        entry[1].extend(rows)
        if src.namespace and src.namespace not in entry[2]:
            entry[2].append(src.namespace)
        if error:
            entry[3].append(error)
    tables = []
    for kind, (src, rows, namespaces, errs) in by_kind.items():
        rows.sort(key=lambda r: (r.namespace, r.name))
        tables.append(
            Table(kind, ",".join(namespaces) or "-", src.columns, tuple(rows), "; ".join(errs))
        )
    events.sort(key=lambda r: -(r.created or 0))
    event_ns = next((s.namespace for s in srcs if s.kind == "Event"), None) or "-"
    return ClusterSnapshot(
        tuple(tables),
        Table(
            "Event", event_ns, EVENT_COLUMNS, tuple(events[:MAX_EVENTS]), "; ".join(event_errors)
        ),
        at=time.time() if at is None else at,
        seq=seq,
    )
