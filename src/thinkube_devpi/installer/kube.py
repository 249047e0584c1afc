"""The only module that talks to the Kubernetes API.

Built on the official ``kubernetes`` client's DynamicClient. Writes are server-side apply with field
manager ``thinkube-devpi``; every API error becomes a :class:`KubeError` that names the object, the
HTTP status and the API's reason, and says what to do next.

One thing, so one module past 500 lines: every call to the Kubernetes API, and nothing else.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from thinkube_devpi import paths
from thinkube_devpi.errors import Error
from thinkube_devpi.installer.events import ObjectRef

FIELD_MANAGER = "thinkube-devpi"
PART_OF = "app.kubernetes.io/part-of"
MANAGED_BY = "app.kubernetes.io/managed-by"
ADOPTED = "thinkube-devpi/adopted"
COMMON_LABELS = {PART_OF: "thinkube-devpi", MANAGED_BY: "thinkube-devpi"}
WATCH_CALL_SECONDS = 30  # each watch call is renewed after at most this long

# The client logs whole response bodies (Secrets included) at DEBUG: keep it quiet whatever the
# root logger's level is.
for _name in ("kubernetes", "kubernetes.client.rest", "urllib3"):
    logging.getLogger(_name).setLevel(logging.WARNING)

log = logging.getLogger(__name__)

ApplyOutcome = Literal["created", "changed", "unchanged", "adopted"]

CRD_HINTS = {
    "argoproj.io": "is Argo Workflows (and ArgoCD for Application) installed in the cluster?",
    "gateway.networking.k8s.io": 'is the Gateway API installed? (or set exposure = "ingress")',
}


_RAISE = object()  # _call's default: a 404 is an error


class KubeError(Error):
    """An API call failed. The message says what, on which object, why, and what to do."""

    def __init__(
        self,
        what: str,
        *,
        ref: ObjectRef | None = None,
        status: int | None = None,
        reason: str = "",
        hint: str = "",
    ) -> None:
        self.what = what
        self.ref = ref
        self.status = status
        self.reason = reason
        parts = [what]
        if ref is not None:
            parts.append(f"on {ref}")
        head = " ".join(parts)
        if status is not None:
            head += f": HTTP {status}"
        if reason:
            head += f" ({reason})" if status is not None else f": {reason}"
        super().__init__(head, hint)

    def __str__(self) -> str:
        return self.message + (f". {self.hint}" if self.hint else "")


class NotOurs(KubeError):
    """The object exists but was not made by thinkube-devpi."""


class Conflict(KubeError):
    """Another field manager owns a field we want to set."""


class WaitTimeout(KubeError):
    """A wait ran out of time; the message says what it waited for."""


class Cancelled(KubeError):
    """A wait or watch was cancelled by the user."""


@dataclass(frozen=True)
class ApplyResult:
    ref: ObjectRef
    outcome: ApplyOutcome
    obj: dict[str, Any]


def is_ours(obj: dict[str, Any]) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    return labels.get(MANAGED_BY) == FIELD_MANAGER


def is_adopted(obj: dict[str, Any]) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    return labels.get(ADOPTED) == "true"


def with_common_labels(obj: dict[str, Any], *, adopted: bool = False) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    meta = out.setdefault("metadata", {})
    labels = {**COMMON_LABELS, **(meta.get("labels") or {})}
    if adopted:
        labels[ADOPTED] = "true"
    meta["labels"] = labels
    return out


def _secret_values(obj: dict[str, Any]) -> list[str]:
    """Every form in which a Secret's values could show up in a message."""
    if obj.get("kind") != "Secret":
        return []
    out: list[str] = []
    for value in (obj.get("data") or {}).values():
        out.append(value)
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            out.append(base64.b64decode(value).decode())
    for value in (obj.get("stringData") or {}).values():
        out += [value, base64.b64encode(value.encode()).decode()]
    out += [json.dumps(v)[1:-1] for v in out]
    return [v for v in out if len(v) >= 4]


def _redact(text: str, secrets: list[str]) -> str:
    for value in sorted(secrets, key=len, reverse=True):
        text = text.replace(value, "***")
    return text


def _status_of(exc: Exception) -> tuple[int | None, str, dict[str, Any]]:
    status = getattr(exc, "status", None)
    body = getattr(exc, "body", None)
    try:
        data = json.loads(body) if body else {}
    except (TypeError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    message = data.get("message") or getattr(exc, "reason", None) or type(exc).__name__
    return status, str(message), data


def _hint_for(status: int | None, ref: ObjectRef | None) -> str:
    if status == 401:
        return (
            "The cluster refused the credentials: check KUBECONFIG and --context, or log in again."
        )
    if status == 403:
        return (
            "RBAC denies this: use a context with rights in that namespace (cluster-admin works)."
        )
    if status == 404 and ref is not None and ref.namespace:
        return f"Does namespace {ref.namespace} exist? Run the namespace phase first."
    if status == 422:
        return "The object is invalid for this cluster's Kubernetes version; please report it."
    if status in (500, 502, 503, 504):
        return "The API server had a problem: try again; a re-run repairs a half-done phase."
    return ""


def _conflict_reason(data: dict[str, Any], message: str) -> str:
    causes = (data.get("details") or {}).get("causes") or []
    fields = [f"{c.get('field')} ({c.get('message')})" for c in causes if c.get("field")]
    return "; ".join(fields) if fields else message


class Kube:
    """A connection to one cluster. Thread-safe for reads; one writer at a time is expected."""

    def __init__(
        self,
        api_client: Any,
        *,
        context: str = "",
        cluster: str = "",
        cache_dir: Path | None = None,
    ) -> None:
        from kubernetes.dynamic import DynamicClient

        self.api_client = api_client
        self.context = context
        self.cluster = cluster
        self.server = api_client.configuration.host
        if cache_dir is None:
            cache_dir = paths.cache_dir()
        cache_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(self.server.encode()).hexdigest()[:16]
        self._cache_file = cache_dir / f"discovery-{digest}.json"
        try:
            self.dyn = DynamicClient(api_client, cache_file=str(self._cache_file))
        except Exception as exc:
            raise _connection_error(exc, self.server) from None
        self._resources: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self.requests = 0

    # ---------------------------------------------------------------- connecting

    @classmethod
    def connect(
        cls,
        kubeconfig: str | Path | None = None,
        context: str | None = None,
        *,
        cache_dir: Path | None = None,
    ) -> Kube:
        """Load a kubeconfig (``--kubeconfig``, else ``KUBECONFIG``, else ~/.kube/config)."""
        import yaml
        from kubernetes import config as kconfig
        from kubernetes.client import ApiClient, Configuration
        from kubernetes.config.config_exception import ConfigException

        path = str(kubeconfig) if kubeconfig else os.environ.get("KUBECONFIG", "~/.kube/config")
        first = os.path.expanduser(path.split(os.pathsep)[0])
        if not os.path.exists(first):
            raise KubeError(
                "No kubeconfig",
                reason=f"{first} does not exist",
                hint="Set KUBECONFIG or pass --kubeconfig; without a cluster, `plan` and `render` "
                "still work.",
            )
        if not os.access(first, os.R_OK):
            raise KubeError("Cannot read kubeconfig", reason=f"{first}: permission denied")
        try:
            contexts, active = kconfig.list_kube_config_contexts(config_file=first)
        except (ConfigException, OSError, ValueError, TypeError, yaml.YAMLError) as exc:
            raise KubeError(
                "Cannot load kubeconfig", reason=f"{first}: {_first_line(exc)}"
            ) from None
        names = [c["name"] for c in contexts or []]
        if context and context not in names:
            raise KubeError(
                "Unknown context",
                reason=f"{context!r} is not in {first}",
                hint="Known contexts: " + (", ".join(names) or "none"),
            )
        chosen = next((c for c in contexts or [] if c["name"] == context), active) or {}
        configuration = Configuration()
        try:
            kconfig.load_kube_config(
                config_file=first, context=context, client_configuration=configuration
            )
        except (ConfigException, OSError, ValueError, TypeError, yaml.YAMLError) as exc:
            raise KubeError(
                "Cannot load kubeconfig", reason=f"{first}: {_first_line(exc)}"
            ) from None
        configuration.debug = False
        client = ApiClient(configuration)
        return cls(
            client,
            context=chosen.get("name", ""),
            cluster=(chosen.get("context") or {}).get("cluster", ""),
            cache_dir=cache_dir,
        )

    def close(self) -> None:
        self.api_client.close()

    def version(self) -> str:
        info = self._call(None, "Reading the server version", lambda: self.dyn.version)
        kube = info.get("kubernetes", info) if isinstance(info, dict) else {}
        return str(kube.get("gitVersion", "unknown"))

    # ---------------------------------------------------------------- resources

    def resource(self, api_version: str, kind: str) -> Any:
        key = (api_version, kind)
        with self._lock:
            if key in self._resources:
                return self._resources[key]
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        try:
            res = self.dyn.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            group = api_version.split("/")[0] if "/" in api_version else ""
            raise KubeError(
                f"The cluster does not serve {kind} ({api_version})",
                status=404,
                reason="no such resource type",
                hint=CRD_HINTS.get(group, "Is the CRD that defines it installed?"),
            ) from None
        except Exception as exc:
            raise _connection_error(exc, self.server) from None
        with self._lock:
            self._resources[key] = res
        return res

    def has_kind(self, api_version: str, kind: str) -> bool:
        try:
            self.resource(api_version, kind)
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def _call(
        self,
        ref: ObjectRef | None,
        what: str,
        fn: Callable[[], Any],
        *,
        secrets: list[str] | None = None,
        if_missing: Any = _RAISE,
    ) -> Any:
        """Run one API call; errors become KubeError. ``if_missing`` is returned on a 404."""
        from kubernetes.client.exceptions import ApiException

        self.requests += 1
        try:
            return fn()
        except ApiException as exc:
            if exc.status == 404 and if_missing is not _RAISE:
                return if_missing
            status, message, data = _status_of(exc)
            message = _redact(message, secrets or [])
            if status == 409 and data.get("reason") == "Conflict":
                raise Conflict(
                    what,
                    ref=ref,
                    status=409,
                    reason=_conflict_reason(data, message),
                    hint="Another field manager owns these fields: re-run with --force-conflicts to "
                    "take them over on purpose.",
                ) from None
            raise KubeError(
                what, ref=ref, status=status, reason=message, hint=_hint_for(status, ref)
            ) from None
        except KubeError:
            raise
        except Exception as exc:
            raise _connection_error(exc, self.server, what=what, ref=ref) from None

    @staticmethod
    def _plain(result: Any) -> Any:
        if hasattr(result, "to_dict"):
            return result.to_dict()
        return result

    # ---------------------------------------------------------------- reads

    def get(self, ref: ObjectRef) -> dict[str, Any] | None:
        """The live object, or None when it does not exist."""
        res = self.resource(ref.api_version, ref.kind)
        return self._call(
            ref,
            "Reading",
            lambda: self._plain(res.get(name=ref.name, namespace=ref.namespace)),
            if_missing=None,
        )

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[list[dict[str, Any]], str]:
        """The objects and the list's resourceVersion (to start a watch from)."""
        res = self.resource(api_version, kind)
        where = ObjectRef(api_version, kind, "*", namespace)
        result = self._call(
            where,
            "Listing",
            lambda: res.get(
                namespace=namespace, label_selector=label_selector, field_selector=field_selector
            ),
        )
        data = self._plain(result)
        items = data.get("items") or []
        for item in items:  # list items come without apiVersion/kind
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return items, str((data.get("metadata") or {}).get("resourceVersion", ""))

    # ---------------------------------------------------------------- writes

    def apply(
        self,
        obj: dict[str, Any],
        *,
        force: bool = False,
        adopt: bool = False,
        live: dict[str, Any] | None = None,
        known_live: bool = False,
    ) -> ApplyResult:
        """Server-side apply ``obj`` with our labels; refuses objects that are not ours.

        ``live`` (with ``known_live=True``) saves a GET when the caller already read the object.
        """
        ref = ObjectRef.of(obj)
        if not known_live:
            live = self.get(ref)
        adopted = False
        if live is not None and not is_ours(live):
            if not adopt:
                raise NotOurs(
                    "Refusing to take over",
                    ref=ref,
                    reason="it exists but was not made by thinkube-devpi",
                    hint="Re-run with --adopt to manage it from now on (rollback will keep it).",
                )
            adopted = True
        elif live is not None and is_adopted(live):
            adopted = True
        body = with_common_labels(obj, adopted=adopted)
        res = self.resource(ref.api_version, ref.kind)
        result = self._call(
            ref,
            "Applying",
            lambda: res.server_side_apply(
                body=body,
                name=ref.name,
                namespace=ref.namespace,
                field_manager=FIELD_MANAGER,
                force_conflicts=True if force else None,
            ),
            secrets=_secret_values(body),
        )
        new = self._plain(result)
        if live is None:
            outcome: ApplyOutcome = "created"
        elif adopted and not is_adopted(live):
            outcome = "adopted"
        elif _rv(new) == _rv(live):
            outcome = "unchanged"
        else:
            outcome = "changed"
        log.debug("%s %s", ref, outcome)
        return ApplyResult(ref, outcome, new)

    def merge_patch(self, ref: ObjectRef, patch: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch (for one-off requests like ArgoCD's refresh annotation)."""
        res = self.resource(ref.api_version, ref.kind)
        return dict(
            self._plain(
                self._call(
                    ref,
                    "Patching",
                    lambda: res.patch(
                        body=patch,
                        name=ref.name,
                        namespace=ref.namespace,
                        content_type="application/merge-patch+json",
                        field_manager=FIELD_MANAGER,
                    ),
                )
            )
        )

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create (for objects that get a fresh name each time, such as a Workflow run)."""
        ref = ObjectRef.of(obj)
        res = self.resource(ref.api_version, ref.kind)
        body = with_common_labels(obj)
        return dict(
            self._plain(
                self._call(
                    ref,
                    "Creating",
                    lambda: res.create(
                        body=body, namespace=ref.namespace, field_manager=FIELD_MANAGER
                    ),
                )
            )
        )

    def delete(
        self, ref: ObjectRef, *, propagation: Literal["Foreground", "Background"] = "Background"
    ) -> bool:
        """Delete; False when it was already gone."""
        res = self.resource(ref.api_version, ref.kind)

        def call() -> bool:
            res.delete(
                name=ref.name, namespace=ref.namespace, body={"propagationPolicy": propagation}
            )
            return True

        return bool(self._call(ref, "Deleting", call, if_missing=False))

    # ---------------------------------------------------------------- watching

    def watch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        name: str | None = None,
        label_selector: str | None = None,
        resource_version: str | None = None,
        timeout: float = WATCH_CALL_SECONDS,
        cancel: threading.Event | None = None,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """One watch call: (event type, object) pairs until ``timeout`` (at most 30 s).

        ``cancel`` closes the stream at once, from any thread.
        """
        from kubernetes import watch as kwatch
        from kubernetes.client.exceptions import ApiException

        res = self.resource(api_version, kind)
        watcher = kwatch.Watch()
        stopper = _Stopper(watcher, cancel)
        ref = ObjectRef(api_version, kind, name or "*", namespace)
        self.requests += 1
        try:
            for event in res.watch(
                namespace=namespace,
                name=name,
                label_selector=label_selector,
                resource_version=resource_version,
                timeout=max(1, int(min(timeout, WATCH_CALL_SECONDS))),
                watcher=watcher,
            ):
                if cancel is not None and cancel.is_set():
                    break
                obj = event.get("raw_object") or {}
                yield str(event.get("type")), obj
        except ApiException as exc:
            if cancel is not None and cancel.is_set():
                return
            status, message, _ = _status_of(exc)
            raise KubeError("Watching", ref=ref, status=status, reason=message) from None
        except Exception as exc:
            if cancel is not None and cancel.is_set():
                return
            raise _connection_error(exc, self.server, what="Watching", ref=ref) from None
        finally:
            stopper.done()

    def wait_until(
        self,
        ref: ObjectRef,
        predicate: Callable[[dict[str, Any] | None], bool],
        *,
        what: str,
        timeout: float,
        cancel: threading.Event | None = None,
        on_change: Callable[[dict[str, Any] | None], None] | None = None,
    ) -> dict[str, Any] | None:
        """Wait until ``predicate(obj)`` is true (obj is None while the object is absent).

        Built on watches of at most 30 s each, renewed until ``timeout``; raises
        :class:`WaitTimeout` naming ``what``.
        """
        deadline = time.monotonic() + timeout
        while True:
            items, rv = self.list(
                ref.api_version,
                ref.kind,
                ref.namespace,
                field_selector=f"metadata.name={ref.name}",
            )
            current = items[0] if items else None
            if on_change is not None:
                on_change(current)
            if predicate(current):
                return current
            while True:
                remaining = deadline - time.monotonic()
                if cancel is not None and cancel.is_set():
                    raise Cancelled(f"Cancelled while waiting for {what}", ref=ref)
                if remaining <= 0:
                    raise WaitTimeout(
                        f"Timed out after {timeout:g}s waiting for {what}",
                        ref=ref,
                        hint="Check the cluster view or `kubectl describe`; a re-run picks up "
                        "where this stopped.",
                    )
                try:
                    for etype, obj in self.watch(
                        ref.api_version,
                        ref.kind,
                        ref.namespace,
                        name=ref.name,
                        resource_version=rv,
                        timeout=remaining,
                        cancel=cancel,
                    ):
                        rv = obj.get("metadata", {}).get("resourceVersion", rv)
                        current = None if etype == "DELETED" else obj
                        if on_change is not None:
                            on_change(current)
                        if predicate(current):
                            return current
                except KubeError as exc:
                    if exc.status == 410:  # history expired: list again
                        break
                    raise

    # ---------------------------------------------------------------- logs

    def pod_log(
        self,
        namespace: str,
        name: str,
        *,
        container: str | None = None,
        follow: bool = False,
        tail_lines: int | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        """A pod's log, line by line; with ``follow``, until the pod ends or ``cancel``."""
        from kubernetes.client import CoreV1Api
        from kubernetes.client.exceptions import ApiException

        api = CoreV1Api(self.api_client)
        ref = ObjectRef("v1", "Pod", name, namespace)
        self.requests += 1
        try:
            resp: Any = api.read_namespaced_pod_log(
                name,
                namespace,
                container=container,
                follow=follow,
                tail_lines=tail_lines,
                _preload_content=False,
            )
        except ApiException as exc:
            status, message, _ = _status_of(exc)
            raise KubeError("Reading the log", ref=ref, status=status, reason=message) from None
        except Exception as exc:
            raise _connection_error(exc, self.server, what="Reading the log", ref=ref) from None
        stopper = _Stopper(None, cancel, resp)
        try:
            buf = b""
            for chunk in resp.stream(4096, decode_content=False):
                if cancel is not None and cancel.is_set():
                    return
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    yield line.decode(errors="replace")
            if buf:
                yield buf.decode(errors="replace")
        except Exception:
            if cancel is not None and cancel.is_set():
                return
            raise
        finally:
            stopper.done()
            resp.release_conn()


class _Stopper:
    """Closes a streaming response as soon as ``cancel`` is set, from a helper thread."""

    def __init__(self, watcher: Any, cancel: threading.Event | None, resp: Any = None) -> None:
        self.watcher = watcher
        self.cancel = cancel
        self.resp = resp
        self.finished = threading.Event()
        if cancel is not None:
            threading.Thread(target=self._run, daemon=True, name="kube-stopper").start()

    def _run(self) -> None:
        assert self.cancel is not None
        while not self.finished.is_set():
            if self.cancel.wait(0.05):
                break
        # Cancelled. The request may still be on its way (the stream resets its stop flag when
        # it starts and has no response yet): keep at it until there is a response to close.
        while not self.finished.is_set():
            if self.watcher is not None:
                self.watcher.stop()
            resp = self.resp if self.resp is not None else getattr(self.watcher, "_resp", None)
            if resp is not None:
                _abort(resp)
                return
            self.finished.wait(0.01)

    def done(self) -> None:
        self.finished.set()


def _abort(resp: Any) -> None:
    """Shut the socket under a streaming response so a blocked read returns at once."""
    if resp is None:
        return
    conn = getattr(resp, "connection", None) or getattr(resp, "_connection", None)
    sock = getattr(conn, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(Exception):  # best effort; the read side already woke up
        resp.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _rv(obj: dict[str, Any] | None) -> str | None:
    return None if obj is None else obj.get("metadata", {}).get("resourceVersion")


def _connection_error(
    exc: Exception, server: str, *, what: str = "Connecting", ref: ObjectRef | None = None
) -> KubeError:
    text = str(exc)
    if "Connection refused" in text or "NewConnectionError" in text or "Max retries" in text:
        return KubeError(
            what,
            ref=ref,
            reason=f"cannot reach the API server at {server} (connection refused)",
            hint="Is the cluster up and is this the right context? Without a cluster, `plan` and "
            "`render` still work.",
        )
    if "timed out" in text.lower():
        return KubeError(
            what,
            ref=ref,
            reason=f"the API server at {server} did not answer in time",
            hint="Check the network or VPN to the cluster, then re-run.",
        )
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return KubeError(
            what,
            ref=ref,
            reason=f"TLS verification of {server} failed",
            hint="The kubeconfig's certificate-authority-data does not match the server.",
        )
    return KubeError(what, ref=ref, reason=f"{type(exc).__name__}: {text.splitlines()[0][:200]}")
