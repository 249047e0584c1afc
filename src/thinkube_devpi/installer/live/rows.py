"""Cluster objects as table rows, k9s-style: status words, a :class:`Health`, immutable snapshots.

Rows carry a k9s-like status word and a :class:`Health` (ok, pending, fault, completed,
terminating); a Running pod that is not ready is a fault, as k9s shows it. Nothing here imports
textual.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

BUILD_PREFIX = "devpi"  # Argo workflows (and their pods) of the build start with this
WORKFLOW_LABEL = "workflows.argoproj.io/workflow"
MAX_EVENTS = 2000


class Health(StrEnum):
    """How a row is coloured, as k9s colours it."""

    OK = "ok"
    PENDING = "pending"
    FAULT = "fault"
    COMPLETED = "completed"
    TERMINATING = "terminating"

    @property
    def is_fault(self) -> bool:
        """What the faults-only toggle keeps: anything that is neither fine nor finished."""
        return self in (Health.FAULT, Health.PENDING, Health.TERMINATING)


@dataclass(frozen=True)
class Row:
    """One object as a table row: a stable key, its cells and how healthy it is."""

    key: str
    name: str
    namespace: str
    status: str
    health: Health
    cells: tuple[str, ...]
    created: float | None = None  # epoch seconds; the UI renders it as an age


@dataclass(frozen=True)
class Table:
    """One kind's rows, with a k9s-like title: ``kind(namespace)[count]``."""

    kind: str
    namespace: str
    columns: tuple[str, ...]
    rows: tuple[Row, ...] = ()
    error: str = ""  # why this table is empty or stale (CRD missing, API error)

    @property
    def title(self) -> str:
        return f"{self.kind}({self.namespace})[{len(self.rows)}]"


@dataclass(frozen=True)
class ClusterSnapshot:
    """Everything the cluster view shows, at one moment. Immutable: safe to pass between threads."""

    tables: tuple[Table, ...]
    events: Table
    at: float = field(default_factory=time.time)
    seq: int = 0

    def table(self, kind: str) -> Table:
        for table in self.tables:
            if table.kind == kind:
                return table
        raise KeyError(kind)

    @property
    def faults(self) -> int:
        return sum(1 for t in self.tables for r in t.rows if r.health is Health.FAULT)


# ---------------------------------------------------------------- rows from objects


def parse_time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def age(created: float | None, now: float) -> str:
    """kubectl-style age: 42s, 5m, 3h, 2d."""
    if created is None:
        return "?"
    secs = max(0, int(now - created))
    if secs < 120:
        return f"{secs}s"
    if secs < 7200:
        return f"{secs // 60}m"
    if secs < 172800:
        return f"{secs // 3600}h"
    return f"{secs // 86400}d"


def metadata(obj: dict[str, Any]) -> dict[str, Any]:
    """An object's metadata, or an empty dict."""
    return obj.get("metadata") or {}


def object_key(obj: dict[str, Any]) -> str:
    """A stable key for an object: its uid, else namespace/name."""
    meta = metadata(obj)
    return str(meta.get("uid") or f"{meta.get('namespace', '')}/{meta.get('name', '')}")


def _row(
    obj: dict[str, Any], status: str, health: Health, *cells: str, name: str | None = None
) -> Row:
    meta = metadata(obj)
    if meta.get("deletionTimestamp") and health is not Health.FAULT:
        status, health = "Terminating", Health.TERMINATING
    return Row(
        key=object_key(obj),
        name=name or str(meta.get("name", "")),
        namespace=str(meta.get("namespace") or ""),
        status=status,
        health=health,
        cells=tuple(cells),
        created=parse_time(meta.get("creationTimestamp")),
    )


_POD_FAULTS = {
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "Error",
    "OOMKilled",
    "ContainerStatusUnknown",
    "Evicted",
    "DeadlineExceeded",
}


def pod_status(pod: dict[str, Any]) -> tuple[str, Health]:
    """The STATUS word kubectl and k9s show, and its health.

    Waiting and terminated container reasons win over the pod phase (CrashLoopBackOff says more
    than Running); init containers show as ``Init:n/m``; a Running pod whose containers are not
    all ready is a fault.
    """
    status = pod.get("status") or {}
    phase = str(status.get("phase") or "Pending")
    reason = str(status.get("reason") or "")
    if metadata(pod).get("deletionTimestamp"):
        return "Terminating", Health.TERMINATING
    if reason in _POD_FAULTS:
        return reason, Health.FAULT
    inits = status.get("initContainerStatuses") or []
    for i, cs in enumerate(inits):
        state = cs.get("state") or {}
        term = state.get("terminated")
        if term and term.get("exitCode", 0) == 0:
            continue
        if term:
            return f"Init:{term.get('reason') or 'Error'}", Health.FAULT
        waiting = (state.get("waiting") or {}).get("reason")
        if waiting and waiting != "PodInitializing":
            return f"Init:{waiting}", (Health.FAULT if waiting in _POD_FAULTS else Health.PENDING)
        return f"Init:{i}/{len(inits)}", Health.PENDING
    word, health = phase, Health.PENDING
    if phase == "Running":
        health = Health.OK
    elif phase == "Succeeded":
        word, health = "Completed", Health.COMPLETED
    elif phase == "Failed":
        word, health = reason or "Failed", Health.FAULT
    elif phase == "Unknown":
        health = Health.FAULT
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        waiting = (state.get("waiting") or {}).get("reason")
        term = state.get("terminated") or {}
        if waiting:
            word = waiting
            health = Health.FAULT if waiting in _POD_FAULTS else Health.PENDING
            break
        if term and phase != "Succeeded":
            word = term.get("reason") or "Error"
            if term.get("exitCode", 0) != 0:
                health = Health.FAULT
                break
    if phase == "Running" and health is Health.OK:
        statuses = status.get("containerStatuses") or []
        if not statuses or not all(cs.get("ready") for cs in statuses):
            health = Health.FAULT  # Running but failing readiness: k9s shows it as an error
    return word, health


def pod_row(pod: dict[str, Any]) -> Row:
    status = pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    total = len(statuses) or len((pod.get("spec") or {}).get("containers") or [])
    ready = sum(1 for cs in statuses if cs.get("ready"))
    restarts = sum(int(cs.get("restartCount") or 0) for cs in statuses)
    word, health = pod_status(pod)
    return _row(
        pod,
        word,
        health,
        f"{ready}/{total}",
        word,
        str(restarts),
        str((pod.get("spec") or {}).get("nodeName") or ""),
    )


def deployment_row(dep: dict[str, Any]) -> Row:
    spec = dep.get("spec") or {}
    status = dep.get("status") or {}
    want = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    ready = int(status.get("readyReplicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    progressing = conditions.get("Progressing") or {}
    failure = conditions.get("ReplicaFailure") or {}
    if progressing.get("status") == "False" or failure.get("status") == "True":
        word = str(progressing.get("reason") or failure.get("reason") or "Failed")
        health = Health.FAULT
    elif want == 0:
        word, health = "ScaledDown", Health.COMPLETED
    elif available >= want and updated >= want and ready >= want:
        word, health = "Available", Health.OK
    else:
        word, health = "Progressing", Health.PENDING
    return _row(dep, word, health, f"{ready}/{want}", str(updated), str(available), word)


def pvc_row(pvc: dict[str, Any]) -> Row:
    spec = pvc.get("spec") or {}
    status = pvc.get("status") or {}
    phase = str(status.get("phase") or "Pending")
    health = {"Bound": Health.OK, "Lost": Health.FAULT}.get(phase, Health.PENDING)
    capacity = (status.get("capacity") or {}).get("storage") or (
        (spec.get("resources") or {}).get("requests") or {}
    ).get("storage", "")
    return _row(
        pvc,
        phase,
        health,
        phase,
        str(spec.get("volumeName") or ""),
        str(capacity),
        ",".join(_short_modes(spec.get("accessModes") or [])),
        str(spec.get("storageClassName") or ""),
    )


def _short_modes(modes: list[str]) -> list[str]:
    short = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX"}
    return [short.get(m, m) for m in modes]


def service_row(svc: dict[str, Any]) -> Row:
    spec = svc.get("spec") or {}
    ports = ",".join(
        f"{p.get('name') + ':' if p.get('name') else ''}{p.get('port')}/{p.get('protocol', 'TCP')}"
        for p in spec.get("ports") or []
    )
    kind = str(spec.get("type") or "ClusterIP")
    return _row(svc, "Active", Health.OK, kind, str(spec.get("clusterIP") or ""), ports)


def ingress_row(ing: dict[str, Any]) -> Row:
    spec = ing.get("spec") or {}
    hosts = ",".join(r.get("host", "*") for r in spec.get("rules") or [])
    lb = ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    address = ",".join(x.get("ip") or x.get("hostname") or "" for x in lb)
    word, health = ("Active", Health.OK) if address else ("Pending", Health.PENDING)
    return _row(ing, word, health, str(spec.get("ingressClassName") or ""), hosts, address)


def httproute_row(route: dict[str, Any]) -> Row:
    """An HTTPRoute as its Gateway reports it: Accepted, Refused (why) or Pending."""
    from thinkube_devpi.installer.phases.p80_exposure import route_problems

    spec = route.get("spec") or {}
    hosts = ",".join(spec.get("hostnames") or ["*"])
    parents = []
    word, health = "Accepted", Health.OK
    for ref in spec.get("parentRefs") or []:
        gateway = f"{ref.get('namespace') or metadata(route).get('namespace', '')}/{ref.get('name')}"
        parents.append(gateway + (f"/{ref['sectionName']}" if ref.get("sectionName") else ""))
        refused, pending = route_problems(route, gateway)
        if refused:
            word, health = "Refused: " + refused[0], Health.FAULT
        elif pending and health is Health.OK:
            word, health = "Pending", Health.PENDING
    return _row(route, word, health, hosts, ",".join(parents), word)


def job_row(job: dict[str, Any]) -> Row:
    spec = job.get("spec") or {}
    status = job.get("status") or {}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    if conditions.get("Failed") == "True":
        word, health = "Failed", Health.FAULT
    elif conditions.get("Complete") == "True":
        word, health = "Complete", Health.COMPLETED
    else:
        word, health = "Running", Health.PENDING
    completions = f"{int(status.get('succeeded') or 0)}/{int(spec.get('completions') or 1)}"
    return _row(job, word, health, completions, word)


def workflow_row(wf: dict[str, Any]) -> Row:
    status = wf.get("status") or {}
    phase = str(status.get("phase") or "Pending")
    health = {
        "Running": Health.PENDING,
        "Pending": Health.PENDING,
        "Succeeded": Health.COMPLETED,
        "Failed": Health.FAULT,
        "Error": Health.FAULT,
    }.get(phase, Health.PENDING)
    message = str(status.get("message") or "")
    return _row(wf, phase, health, phase, str(status.get("progress") or ""), message[:80])


def application_row(app: dict[str, Any]) -> Row:
    status = app.get("status") or {}
    sync = str((status.get("sync") or {}).get("status") or "Unknown")
    health_word = str((status.get("health") or {}).get("status") or "Unknown")
    op = str((status.get("operationState") or {}).get("phase") or "")
    if health_word in ("Degraded", "Missing") or op in ("Failed", "Error"):
        health = Health.FAULT
    elif health_word == "Healthy" and sync == "Synced":
        health = Health.OK
    else:
        health = Health.PENDING
    revision = str((status.get("sync") or {}).get("revision") or "")[:7]
    return _row(app, f"{sync}/{health_word}", health, sync, health_word, op, revision)


def event_row(ev: dict[str, Any]) -> Row:
    kind = str(ev.get("type") or "Normal")
    obj = ev.get("involvedObject") or ev.get("regarding") or {}
    last = (
        ev.get("lastTimestamp")
        or ev.get("eventTime")
        or (ev.get("series") or {}).get("lastObservedTime")
        or metadata(ev).get("creationTimestamp")
    )
    count = ev.get("count") or (ev.get("series") or {}).get("count") or 1
    row = _row(
        ev,
        kind,
        Health.FAULT if kind == "Warning" else Health.OK,
        kind,
        str(ev.get("reason") or ""),
        f"{obj.get('kind', '')}/{obj.get('name', '')}",
        str(count),
        " ".join(str(ev.get("message") or ev.get("note") or "").split())[:200],
    )
    # events are aged by when they last happened, not when the Event object was made
    return Row(
        row.key, row.name, row.namespace, row.status, row.health, row.cells, parse_time(last)
    )
