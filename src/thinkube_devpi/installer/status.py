"""Live cluster status as plain snapshots, for the TUI's cluster view and `install status --watch`.

A :class:`StatusWatcher` keeps one thread per source (pods, deployments, PVCs, services, ingresses,
jobs and events in the devpi namespace; the build's Argo workflows and pods in the Argo namespace;
the ArgoCD Application). Each thread lists once, then watches from the list's resourceVersion; when
a watch call ends (after at most 30 s) it is re-armed from the newest resourceVersion it saw, and a
410 ("too old") lists again. After every change the watcher publishes a fresh, immutable
:class:`ClusterSnapshot`, at most every ``min_interval`` seconds so a burst of events costs one
render. ``stop()`` sets the cancel event, which closes every open stream at once.

Rows carry a k9s-like status word and a :class:`Health` (ok, pending, fault, completed,
terminating); a Running pod that is not ready is a fault, as k9s shows it. Nothing here imports
textual.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from thinkube_devpi.installer.kube import KubeError

if TYPE_CHECKING:
    from thinkube_devpi.config import Settings
    from thinkube_devpi.installer.kube import Kube

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


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def _key(obj: dict[str, Any]) -> str:
    meta = _meta(obj)
    return str(meta.get("uid") or f"{meta.get('namespace', '')}/{meta.get('name', '')}")


def _row(
    obj: dict[str, Any], status: str, health: Health, *cells: str, name: str | None = None
) -> Row:
    meta = _meta(obj)
    if meta.get("deletionTimestamp") and health is not Health.FAULT:
        status, health = "Terminating", Health.TERMINATING
    return Row(
        key=_key(obj),
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
    if _meta(pod).get("deletionTimestamp"):
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
        gateway = f"{ref.get('namespace') or _meta(route).get('namespace', '')}/{ref.get('name')}"
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
        or _meta(ev).get("creationTimestamp")
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


# ---------------------------------------------------------------- sources


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
        labels = _meta(obj).get("labels") or {}
        name = labels.get(WORKFLOW_LABEL) or _meta(obj).get("name", "")
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


# ---------------------------------------------------------------- the watcher


class StatusWatcher:
    """Watches the sources in threads and calls ``on_snapshot`` after changes.

    ``on_snapshot`` runs in a watcher thread: it should hand the snapshot over (post a message),
    not render. ``stop()`` returns at once; the threads end within moments because their streams
    are closed through ``cancel``.
    """

    def __init__(
        self,
        kube: Kube,
        settings: Settings,
        on_snapshot: Callable[[ClusterSnapshot], None],
        *,
        min_interval: float = 0.05,
        retry_after: float = 5.0,
        cancel: threading.Event | None = None,
    ) -> None:
        self.kube = kube
        self.sources = sources(settings)
        self.on_snapshot = on_snapshot
        self.min_interval = min_interval
        self.retry_after = retry_after
        self.cancel = cancel or threading.Event()
        self._objects: list[dict[str, dict[str, Any]]] = [{} for _ in self.sources]
        self._errors: list[str] = ["" for _ in self.sources]
        self._lock = threading.Lock()
        self._dirty = threading.Event()
        self._threads: list[threading.Thread] = []
        self._seq = 0
        self._served: set[tuple[str, str]] = set()
        # a lookup of a kind the cluster does not serve makes the client rediscover every
        # group, which races with other lookups: those go one at a time
        self._discovery = threading.Lock()

    def start(self) -> None:
        """Start watching; returns at once (the network is only touched in the threads)."""
        starter = threading.Thread(target=self._start_sources, daemon=True, name="status-start")
        self._threads.append(starter)
        publisher = threading.Thread(target=self._publish, daemon=True, name="status-publish")
        self._threads.append(publisher)
        starter.start()
        publisher.start()

    def _start_sources(self) -> None:
        # The dynamic client's discovery cache is not safe for concurrent first lookups: look
        # every kind up here, one after the other, before the sources run in parallel.
        for api_version, kind in dict.fromkeys((s.api_version, s.kind) for s in self.sources):
            if self.cancel.is_set():
                return
            with contextlib.suppress(KubeError):  # the source reports it when it lists
                if self.kube.has_kind(api_version, kind):
                    self._served.add((api_version, kind))
        for i, src in enumerate(self.sources):
            if self.cancel.is_set():
                return
            t = threading.Thread(
                target=self._follow, args=(i, src), daemon=True, name=f"status-{src.kind}"
            )
            self._threads.append(t)
            t.start()

    def stop(self) -> None:
        """Close every watch now; does not wait."""
        self.cancel.set()
        self._dirty.set()

    def join(self, timeout: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    @property
    def alive(self) -> int:
        return sum(1 for t in self._threads if t.is_alive())

    def snapshot(self) -> ClusterSnapshot:
        with self._lock:
            objects = [dict(o) for o in self._objects]
            errors = list(self._errors)
            self._seq += 1
            seq = self._seq
        return build_snapshot(self.sources, objects, errors, seq=seq)

    # -- threads

    def _changed(self) -> None:
        self._dirty.set()

    def _publish(self) -> None:
        while not self.cancel.is_set():
            self._dirty.wait()
            if self.cancel.is_set():
                return
            self._dirty.clear()
            try:
                self.on_snapshot(self.snapshot())
            except Exception:  # a closed UI must not kill the watcher with a traceback
                if self.cancel.is_set():
                    return
            self.cancel.wait(self.min_interval)

    def _set(self, i: int, objs: dict[str, dict[str, Any]] | None, error: str | None) -> None:
        with self._lock:
            if objs is not None:
                self._objects[i] = objs
            if error is not None:
                self._errors[i] = error
        self._changed()

    def _follow(self, i: int, src: Source) -> None:
        field_selector = f"metadata.name={src.name}" if src.name else None
        while not self.cancel.is_set():
            try:
                if (src.api_version, src.kind) in self._served:
                    items, rv = self._list(src, field_selector)
                else:
                    with self._discovery:
                        items, rv = self._list(src, field_selector)
                    self._served.add((src.api_version, src.kind))
            except KubeError as exc:
                if self.cancel.is_set():
                    return
                self._set(i, {}, _short_error(exc))
                # a missing CRD will not appear soon: look again much later
                self.cancel.wait(self.retry_after * (12 if exc.status == 404 else 1))
                continue
            objs = {_key(o): o for o in items}
            self._set(i, objs, "")
            try:
                self._watch(i, src, objs, rv, field_selector)
            except KubeError as exc:
                if self.cancel.is_set():
                    return
                if exc.status != 410:
                    self._set(i, None, _short_error(exc))
                    self.cancel.wait(self.retry_after)

    def _list(self, src: Source, field_selector: str | None) -> tuple[list[dict[str, Any]], str]:
        return self.kube.list(
            src.api_version,
            src.kind,
            src.namespace,
            label_selector=src.label_selector,
            field_selector=field_selector,
        )

    def _watch(
        self,
        i: int,
        src: Source,
        objs: dict[str, dict[str, Any]],
        rv: str,
        field_selector: str | None,
    ) -> None:
        """Watch calls re-armed from the newest resourceVersion until cancel or an error."""
        while not self.cancel.is_set():
            for etype, obj in self.kube.watch(
                src.api_version,
                src.kind,
                src.namespace,
                name=src.name,
                label_selector=src.label_selector,
                resource_version=rv,
                cancel=self.cancel,
            ):
                if etype == "ERROR":
                    code = obj.get("code")
                    raise KubeError(
                        "Watching",
                        status=int(code) if code else None,
                        reason=str(obj.get("message", "")),
                    )
                rv = str(_meta(obj).get("resourceVersion") or rv)
                if etype == "BOOKMARK":
                    continue
                obj.setdefault("apiVersion", src.api_version)
                obj.setdefault("kind", src.kind)
                objs = dict(objs)
                if etype == "DELETED":
                    objs.pop(_key(obj), None)
                else:
                    objs[_key(obj)] = obj
                self._set(i, objs, "")


def _short_error(exc: KubeError) -> str:
    text = str(exc)
    if exc.hint and text.endswith(exc.hint):
        text = text[: -len(exc.hint)].rstrip(". ")
    return text + (f" ({exc.hint})" if exc.status == 404 and exc.hint else "")


# ---------------------------------------------------------------- preflight


@dataclass(frozen=True)
class Check:
    """One preflight result."""

    name: str
    ok: bool | None  # None: could not be checked (plan mode)
    detail: str


def preflight(kube: Kube | None, settings: Settings, *, timeout: float = 3.0) -> list[Check]:
    """Cluster reachable, Argo and ArgoCD CRDs, ingress class or Gateway, Keycloak issuer, TLS."""
    out: list[Check] = []
    if kube is None:
        out.append(Check("cluster reachable", False, "no cluster: plan mode"))
    else:
        try:
            out.append(Check("cluster reachable", True, f"{kube.server} ({kube.version()})"))
        except KubeError as exc:
            out.append(Check("cluster reachable", False, str(exc)))
            kube = None
    if kube is not None:
        for label, api, kind in (
            ("Argo Workflows CRDs", "argoproj.io/v1alpha1", "Workflow"),
            ("ArgoCD CRDs", "argoproj.io/v1alpha1", "Application"),
        ):
            out.append(_kind_check(kube, label, api, kind))
        out += exposure_checks(kube, settings)
        out.append(argocd_tracking_check(kube, settings))
    else:
        for name in ("Argo Workflows CRDs", "ArgoCD CRDs", "exposure", "gateway peer"):
            out.append(Check(name, None, "needs a cluster"))
    out.append(_issuer_check(settings, timeout))
    return out


def exposure_checks(kube: Kube, settings: Settings) -> list[Check]:
    """The Gateway (or IngressClass) the settings name, with what the cluster offers when it is
    missing; the peer the NetworkPolicies admit; the wildcard Secret only where it is used."""
    from thinkube_devpi.installer.phases.base import Context, PhaseError
    from thinkube_devpi.installer.phases.p80_exposure import ExposurePhase

    phase = ExposurePhase(Context(settings, kube=kube))
    out: list[Check] = []
    if settings.exposure == "gateway":
        ref_api, ref_kind = "gateway.networking.k8s.io/v1", "Gateway"
        name, ns = settings.gateway_name, settings.gateway_namespace
        label = f"Gateway {ns}/{name}"
    else:
        ref_api, ref_kind = "networking.k8s.io/v1", "IngressClass"
        name, ns = settings.ingress_class, None
        label = f"IngressClass {name}"
    check = _object_check(kube, label, ref_api, ref_kind, name, ns)
    if check.ok is False:
        try:
            offer = phase.detected_exposure()
        except KubeError as exc:
            offer = str(exc)
        check = Check(check.name, False, f"{check.detail}. {offer}")
    elif check.ok and settings.exposure == "gateway":
        try:
            phase._check_gateway()
            check = Check(check.name, True, check.detail + f", listener {settings.gateway_section}")
        except PhaseError as exc:
            check = Check(check.name, False, f"{exc.message} {exc.hint}")
    out.append(check)
    if check.ok:
        try:
            phase.check_peer()
            peer = (
                "Cilium's ingress identity"
                if settings.ingress_peer == "cilium-ingress"
                else f"pods in {settings.ingress_peer_namespace}"
            )
            out.append(Check("gateway peer", True, f"{peer} may reach devpi"))
        except PhaseError as exc:
            out.append(Check("gateway peer", False, f"{exc.message} {exc.hint}"))
        except KubeError as exc:
            out.append(Check("gateway peer", False, str(exc)))
    if settings.exposure == "ingress" and not (settings.tls_cert_file and settings.tls_key_file):
        out.append(
            _object_check(
                kube,
                "wildcard TLS Secret",
                "v1",
                "Secret",
                settings.tls_source_name,
                settings.tls_secret_namespace,
            )
        )
    return out


def argocd_tracking_check(kube: Kube, settings: Settings) -> Check:
    """Which resource tracking the Argo CD in front of us uses (item: nothing we apply ourselves
    carries the Application's instance label, so neither method prunes it)."""
    from thinkube_devpi.installer.events import ObjectRef
    from thinkube_devpi.installer.phases.p70_deploy import argocd_tracking_method

    try:
        cm = kube.get(ObjectRef("v1", "ConfigMap", "argocd-cm", settings.argocd_namespace))
    except KubeError as exc:
        return Check("Argo CD tracking", False, str(exc))
    method, why = argocd_tracking_method(cm, kube, settings.argocd_namespace)
    return Check("Argo CD tracking", True, f"{method} ({why})")


def _kind_check(kube: Kube, label: str, api: str, kind: str) -> Check:
    try:
        found = kube.has_kind(api, kind)
    except KubeError as exc:
        return Check(label, False, str(exc))
    return Check(label, found, f"{kind} ({api}) " + ("served" if found else "not served"))


def _object_check(
    kube: Kube, label: str, api: str, kind: str, name: str, namespace: str | None
) -> Check:
    from thinkube_devpi.installer.events import ObjectRef

    ref = ObjectRef(api, kind, name, namespace)
    try:
        found = kube.get(ref) is not None  # only existence: a Secret's data is never shown
    except KubeError as exc:
        return Check(label, False, str(exc))
    return Check(label, found, f"{ref} " + ("present" if found else "not found"))


def _issuer_check(settings: Settings, timeout: float) -> Check:
    url = f"{settings.issuer}/.well-known/openid-configuration"
    if settings.is_placeholder and not settings.keycloak_url:
        return Check("Keycloak issuer", None, f"set a domain first ({url} is a placeholder)")
    import httpx

    try:
        verify: ssl.SSLContext | bool = True
        if settings.keycloak_ca_file:
            verify = ssl.create_default_context(cafile=settings.keycloak_ca_file)
        with httpx.Client(timeout=timeout, verify=verify) as client:
            resp = client.get(url)
    except httpx.HTTPError as exc:
        return Check("Keycloak issuer", False, f"{url}: {type(exc).__name__}")
    if resp.status_code != 200:
        return Check("Keycloak issuer", False, f"{url}: HTTP {resp.status_code}")
    issuer = ""
    with contextlib.suppress(ValueError):
        issuer = str(resp.json().get("issuer", ""))
    ok = issuer == settings.issuer
    return Check(
        "Keycloak issuer", ok, f"{settings.issuer}" + ("" if ok else f" (server says {issuer!r})")
    )
