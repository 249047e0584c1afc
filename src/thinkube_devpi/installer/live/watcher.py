"""The live status watcher: one thread per source, publishing immutable snapshots.

A :class:`StatusWatcher` keeps one thread per source (pods, deployments, PVCs, services, ingresses,
jobs and events in the devpi namespace; the build's Argo workflows and pods in the Argo namespace;
the ArgoCD Application). Each thread lists once, then watches from the list's resourceVersion; when
a watch call ends (after at most 30 s) it is re-armed from the newest resourceVersion it saw, and a
410 ("too old") lists again. After every change the watcher publishes a fresh, immutable
:class:`ClusterSnapshot`, at most every ``min_interval`` seconds so a burst of events costs one
render. ``stop()`` sets the cancel event, which closes every open stream at once.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from thinkube_devpi.installer.kube import RELIST, KubeError
from thinkube_devpi.installer.live.rows import ClusterSnapshot, metadata, object_key
from thinkube_devpi.installer.live.sources import Source, build_snapshot, sources

if TYPE_CHECKING:
    from thinkube_devpi.config import Settings
    from thinkube_devpi.installer.kube import Kube


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
            objs = {object_key(o): o for o in items}
            self._set(i, objs, "")
            try:
                self._watch(i, src, objs, rv, field_selector)
            except KubeError as exc:
                if self.cancel.is_set():
                    return
                # history expired (410), a lagging server's 504, a dropped stream: list again
                # at once (the list says so if the server is really gone)
                if exc.status not in RELIST and not exc.transient:
                    self._set(i, None, _short_error(exc))
                    self.cancel.wait(self.retry_after)
                elif exc.status not in RELIST:
                    self.cancel.wait(min(self.retry_after, 0.5))  # no tight loop on a bad link

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
                rv = str(metadata(obj).get("resourceVersion") or rv)
                if etype == "BOOKMARK":
                    continue
                obj.setdefault("apiVersion", src.api_version)
                obj.setdefault("kind", src.kind)
                objs = dict(objs)
                if etype == "DELETED":
                    objs.pop(object_key(obj), None)
                else:
                    objs[object_key(obj)] = obj
                self._set(i, objs, "")


def _short_error(exc: KubeError) -> str:
    text = str(exc)
    if exc.hint and text.endswith(exc.hint):
        text = text[: -len(exc.hint)].rstrip(". ")
    return text + (f" ({exc.hint})" if exc.status == 404 and exc.hint else "")
