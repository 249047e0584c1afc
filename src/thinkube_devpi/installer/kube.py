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
import math
import os
import random
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
# a watch answered with these starts over from a fresh list: 410 Gone (the history expired) and
# 504 "Too large resource version" (an HA API server that lags behind the one that listed)
RELIST = (410, 504)
MANAGED_BY = "app.kubernetes.io/managed-by"
ADOPTED = "thinkube-devpi/adopted"
COMMON_LABELS = {PART_OF: "thinkube-devpi", MANAGED_BY: "thinkube-devpi"}
WATCH_CALL_SECONDS = 30  # each watch call is renewed after at most this long
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

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
        transient: bool = False,
        setting: str = "",
    ) -> None:
        self.transient = transient  # a retry (or a re-run) may well succeed
        self.timed_out = False  # no answer within the read timeout (retried once at most)
        self.what = what
        self.ref = ref
        self.status = status
        self.reason = reason
        super().__init__(self._head(), hint, setting=setting)

    def _head(self) -> str:
        head = self.what if self.ref is None else f"{self.what} on {self.ref}"
        if self.status is not None:
            head += f": HTTP {self.status}"
        if self.reason:
            head += f" ({self.reason})" if self.status is not None else f": {self.reason}"
        return head

    def append_reason(self, note: str) -> None:
        """Append ``note`` to the reason (the message keeps its shape: what, why, hint)."""
        self.reason = f"{self.reason}; {note}" if self.reason else note
        self.message = self._head()
        self.args = (self.message,)


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


def _env_seconds(name: str, default: float, *, allow_zero: bool = False) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero) or value > 3600:
        raise KubeError(
            f"Bad {name}",
            reason=f"{raw!r} is not a number of seconds",
            hint="Use a positive number up to 3600, for example 30.",
        )
    return value


@dataclass(frozen=True)
class Timeouts:
    """Client-side bounds for every request: connect, read, and bounded retries.

    A dropped connection (ZeroTier, Tailscale) sends nothing and resets nothing: only a read
    timeout notices it. Settable with ``THINKUBE_DEVPI_CONNECT_TIMEOUT``,
    ``THINKUBE_DEVPI_READ_TIMEOUT``, ``THINKUBE_DEVPI_RETRIES`` and ``THINKUBE_DEVPI_RETRY_BACKOFF``.
    """

    connect: float = 10.0
    read: float = 30.0
    retries: int = 4  # further attempts of an idempotent request after the first
    backoff: float = 0.5  # first pause; doubles per attempt, with jitter
    backoff_max: float = 8.0
    retry_after_max: float = 30.0  # a longer Retry-After is reported, not waited out
    log_idle: float = 60.0  # a followed log silent this long is re-opened

    @classmethod
    def from_env(cls) -> Timeouts:
        base = cls()
        retries = _env_seconds("THINKUBE_DEVPI_RETRIES", base.retries, allow_zero=True)
        if retries != int(retries) or retries > 20:
            raise KubeError(
                "Bad THINKUBE_DEVPI_RETRIES",
                reason=f"{retries:g} is not a whole number from 0 to 20",
            )
        return cls(
            connect=_env_seconds("THINKUBE_DEVPI_CONNECT_TIMEOUT", base.connect),
            read=_env_seconds("THINKUBE_DEVPI_READ_TIMEOUT", base.read),
            retries=int(retries),
            backoff=_env_seconds("THINKUBE_DEVPI_RETRY_BACKOFF", base.backoff, allow_zero=True),
            log_idle=_env_seconds("THINKUBE_DEVPI_LOG_IDLE_TIMEOUT", base.log_idle),
        )

    def pair(self, read: float | None = None) -> tuple[float, float]:
        return (self.connect, self.read if read is None else max(0.1, read))

    def pause(self, attempt: int) -> float:
        """The pause before retry number ``attempt`` (1-based): exponential with full jitter."""
        top = min(self.backoff_max, self.backoff * (2 ** (attempt - 1)))
        return top / 2 + random.uniform(0, top / 2)  # noqa: S311 - jitter, not a secret


def _retry_after(exc: Exception) -> float | None:
    headers = getattr(exc, "headers", None) or {}
    try:
        raw = headers.get("Retry-After")
    except AttributeError:
        return None
    try:
        value = float(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None
    return value if value is not None and math.isfinite(value) and value >= 0 else None


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
    """A Secret's values (``data`` decoded, and ``stringData``): what a message must not show."""
    if obj.get("kind") != "Secret":
        return []
    out: list[str] = []
    for value in (obj.get("data") or {}).values():
        out.append(value)
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            out.append(base64.b64decode(value).decode())
    out += list((obj.get("stringData") or {}).values())
    return [v for v in out if isinstance(v, str)]


def _redact(text: str, secrets: list[str]) -> str:
    from thinkube_devpi.secrets import redact

    return redact(text, secrets)


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
        timeouts: Timeouts | None = None,
    ) -> None:
        from kubernetes.dynamic import DynamicClient

        self.api_client = api_client
        self.context = context
        self.cluster = cluster
        self.server = api_client.configuration.host
        self.timeouts = timeouts if timeouts is not None else Timeouts.from_env()
        _bound_requests(api_client, self.timeouts)
        if cache_dir is None:
            cache_dir = paths.cache_dir()
        cache_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(self.server.encode()).hexdigest()[:16]
        self._cache_file = cache_dir / f"discovery-{digest}.json"
        self._resources: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self.requests = 0
        self.retried = 0  # requests that needed another attempt (for the chaos figures)
        self.dyn = self._call(
            None,
            "Connecting",
            lambda: DynamicClient(api_client, cache_file=str(self._cache_file)),
        )

    # ---------------------------------------------------------------- connecting

    @classmethod
    def connect(
        cls,
        kubeconfig: str | Path | None = None,
        context: str | None = None,
        *,
        cache_dir: Path | None = None,
        timeouts: Timeouts | None = None,
    ) -> Kube:
        """Load a kubeconfig (``--kubeconfig``, else ``KUBECONFIG``, else ~/.kube/config)."""
        import yaml
        from kubernetes import config as kconfig
        from kubernetes.client import ApiClient, Configuration
        from kubernetes.config.config_exception import ConfigException

        path = str(kubeconfig) if kubeconfig else os.environ.get("KUBECONFIG", "~/.kube/config")
        # KUBECONFIG may list several files (":"-separated): kubectl merges them, first wins
        paths = [os.path.expanduser(p) for p in path.split(os.pathsep) if p]
        present = [p for p in paths if os.path.exists(p)]
        if not present:
            raise KubeError(
                "No kubeconfig",
                reason=f"{' nor '.join(paths) or path} does not exist",
                hint="Set KUBECONFIG or pass --kubeconfig (without a cluster, "
                "`tk-devpi install plan` and `tk-devpi install render --out DIR` still work).",
            )
        for p in present:
            if not os.access(p, os.R_OK):
                raise KubeError("Cannot read kubeconfig", reason=f"{p}: permission denied")
        merged = os.pathsep.join(present)
        try:
            contexts, active = kconfig.list_kube_config_contexts(config_file=merged)
        except (ConfigException, OSError, ValueError, TypeError, yaml.YAMLError) as exc:
            raise KubeError(
                "Cannot load kubeconfig", reason=f"{merged}: {_first_line(exc)}"
            ) from None
        names = [c["name"] for c in contexts or []]
        if context and context not in names:
            raise KubeError(
                "Unknown context",
                reason=f"{context!r} is not in {merged}",
                hint="Known contexts: " + (", ".join(names) or "none"),
            )
        chosen = next((c for c in contexts or [] if c["name"] == context), active) or {}
        configuration = Configuration()
        try:
            kconfig.load_kube_config(
                config_file=merged, context=context, client_configuration=configuration
            )
        except (ConfigException, OSError, ValueError, TypeError, yaml.YAMLError) as exc:
            raise KubeError(
                "Cannot load kubeconfig", reason=f"{merged}: {_first_line(exc)}"
            ) from None
        configuration.debug = False
        client = ApiClient(configuration)
        return cls(
            client,
            context=chosen.get("name", ""),
            cluster=(chosen.get("context") or {}).get("cluster", ""),
            cache_dir=cache_dir,
            timeouts=timeouts,
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
            res = self._call(
                None,
                f"Looking up {kind} ({api_version})",
                lambda: self.dyn.resources.get(api_version=api_version, kind=kind),
                passthrough=(ResourceNotFoundError,),
            )
        except ResourceNotFoundError:
            group = api_version.split("/")[0] if "/" in api_version else ""
            raise KubeError(
                f"The cluster does not serve {kind} ({api_version})",
                status=404,
                reason="no such resource type",
                hint=CRD_HINTS.get(group, "Is the CRD that defines it installed?"),
            ) from None
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
        idempotent: bool = True,
        passthrough: tuple[type[BaseException], ...] = (),
        deadline: float | None = None,
    ) -> Any:
        """Run one API call; errors become KubeError. ``if_missing`` is returned on a 404.

        An idempotent call (a read, a server-side apply, a delete) is tried again after a 429
        (honouring Retry-After), a 5xx, a reset or a read timeout, with bounded backoff and never
        past ``deadline``; a create is never sent twice.
        """
        from kubernetes.client.exceptions import ApiException

        attempt = 0
        timeouts = 0
        while True:
            self.requests += 1
            attempt += 1
            try:
                return fn()
            except ApiException as exc:
                if exc.status == 404 and if_missing is not _RAISE:
                    return if_missing
                error: KubeError = _api_error(exc, what, ref, secrets or [])
                retryable = idempotent and _retryable_status(exc)
                pause = _retry_after(exc) if exc.status == 429 else None
            except passthrough:
                raise
            except KubeError:
                raise
            except Exception as exc:
                error = _connection_error(
                    exc, self.server, what=what, ref=ref, timeouts=self.timeouts
                )
                # a silent link is given one more try, not four: each costs a whole read timeout
                timeouts += error.timed_out
                retryable = idempotent and error.transient and timeouts <= 1
                pause = None
            if not retryable or attempt > self.timeouts.retries:
                if attempt > 1:
                    error.append_reason(f"after {attempt} attempts")
                raise error from None
            if pause is None:
                pause = self.timeouts.pause(attempt)
            elif pause > self.timeouts.retry_after_max:
                error.append_reason(f"the server asks to retry after {pause:g}s")
                raise error from None
            if deadline is not None and time.monotonic() + pause >= deadline:
                raise error from None
            log.debug("%s: %s; retrying in %.2fs", what, error, pause)
            self.retried += 1
            time.sleep(pause)

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
        deadline: float | None = None,
    ) -> tuple[list[dict[str, Any]], str]:
        """The objects and the list's resourceVersion (to start a watch from).

        With ``deadline`` (a ``time.monotonic()`` value), neither the read nor a retry outlives it.
        """
        res = self.resource(api_version, kind)
        where = ObjectRef(api_version, kind, "*", namespace)

        def call() -> Any:
            kwargs: dict[str, Any] = {}
            if deadline is not None:
                left = deadline - time.monotonic()
                kwargs["_request_timeout"] = self.timeouts.pair(min(self.timeouts.read, left + 1))
            return res.get(
                namespace=namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                **kwargs,
            )

        result = self._call(where, "Listing", call, deadline=deadline)
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
                    setting="adopt",
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
                    idempotent=False,  # sent once: a retry could make a second object
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
        seconds = max(1, int(min(timeout, WATCH_CALL_SECONDS)))
        self.requests += 1
        try:
            # The server ends the call after ``seconds``; a connection that drops silently sends
            # nothing at all, so the read timeout is the call's length plus a margin.
            for event in watcher.stream(
                res.get,
                namespace=namespace,
                field_selector=f"metadata.name={name}" if name else None,
                label_selector=label_selector,
                resource_version=resource_version,
                serialize=False,
                timeout_seconds=seconds,
                _request_timeout=self.timeouts.pair(seconds + min(5.0, self.timeouts.read)),
            ):
                if cancel is not None and cancel.is_set():
                    break
                if event.get("type") == "ERROR":
                    raw = event.get("raw_object") or {}
                    code = raw.get("code")
                    raise KubeError(
                        "Watching",
                        ref=ref,
                        status=code if isinstance(code, int) else None,
                        reason=str(raw.get("message") or raw.get("reason") or "watch error"),
                        transient=code in (410, 504) or code in RETRY_STATUSES,
                    )
                obj = event.get("raw_object") or {}
                yield str(event.get("type")), obj
        except ApiException as exc:
            if cancel is not None and cancel.is_set():
                return
            error = _api_error(exc, "Watching", ref, [])
            error.transient = exc.status in (410, 504) or _retryable_status(exc)
            raise error from None
        except KubeError:
            raise
        except Exception as exc:
            if cancel is not None and cancel.is_set():
                return
            raise _connection_error(
                exc, self.server, what="Watching", ref=ref, timeouts=self.timeouts,
                waited=seconds + min(5.0, self.timeouts.read),
            ) from None
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

        def timed_out() -> WaitTimeout:
            return WaitTimeout(
                f"Timed out after {timeout:g}s waiting for {what}",
                ref=ref,
                hint="Check the cluster view or `kubectl describe`; a re-run picks up "
                "where this stopped.",
            )

        while True:
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"Cancelled while waiting for {what}", ref=ref)
            try:
                items, rv = self.list(
                    ref.api_version,
                    ref.kind,
                    ref.namespace,
                    field_selector=f"metadata.name={ref.name}",
                    deadline=deadline,
                )
            except KubeError as exc:
                if time.monotonic() >= deadline:
                    raise timed_out() from None
                exc.append_reason(f"while waiting for {what}")
                raise
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
                    raise timed_out()
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
                    # history expired (410, or 504 "Too large resource version" from an HA
                    # server), a dropped or reset stream, a 5xx: list again, within the deadline
                    if not (exc.transient or exc.status in RELIST):
                        raise
                    log.debug("watch for %s ended: %s; listing again", what, exc)
                    pause = min(self.timeouts.pause(1), max(0.0, deadline - time.monotonic()))
                    if cancel is not None and cancel.wait(pause):
                        raise Cancelled(f"Cancelled while waiting for {what}", ref=ref) from None
                    if cancel is None:
                        time.sleep(pause)
                    break

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
        idle = self.timeouts.log_idle if follow else self.timeouts.read

        def open_stream(since: int | None) -> Any:
            self.requests += 1
            try:
                return api.read_namespaced_pod_log(
                    name,
                    namespace,
                    container=container,
                    follow=follow,
                    tail_lines=tail_lines if since is None else None,
                    since_seconds=since,
                    _preload_content=False,
                    _request_timeout=self.timeouts.pair(idle),
                )
            except ApiException as exc:
                raise _api_error(exc, "Reading the log", ref, []) from None
            except Exception as exc:
                raise _connection_error(
                    exc, self.server, what="Reading the log", ref=ref, timeouts=self.timeouts
                ) from None

        resp = open_stream(None)
        reopened = 0
        last_data = time.monotonic()
        while True:
            stopper = _Stopper(None, cancel, resp)
            silent = False
            try:
                buf = b""
                for chunk in resp.stream(4096, decode_content=False):
                    if cancel is not None and cancel.is_set():
                        return
                    last_data = time.monotonic()
                    buf += chunk
                    *lines, buf = buf.split(b"\n")
                    for line in lines:
                        yield line.decode(errors="replace")
                if buf:
                    yield buf.decode(errors="replace")
            except Exception as exc:
                if cancel is not None and cancel.is_set():
                    return
                error = _connection_error(
                    exc, self.server, what="Reading the log", ref=ref, timeouts=self.timeouts,
                    waited=idle,
                )
                if not (follow and error.transient):
                    raise error from None
                silent = True  # a quiet step, or a connection that dropped without a word
            finally:
                stopper.done()
                resp.release_conn()
            if not silent:
                return
            reopened += 1
            if cancel is None and reopened > 3:
                raise KubeError(
                    "Reading the log",
                    ref=ref,
                    reason=f"nothing arrived for {idle * reopened:.0f}s",
                    transient=True,
                )
            # a new connection, from a little before the last line seen (a line may repeat)
            resp = open_stream(max(1, math.ceil(time.monotonic() - last_data) + 1))


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


def _bound_requests(api_client: Any, timeouts: Timeouts) -> None:
    """Give every request of ``api_client`` a connect and a read timeout unless it sets its own.

    The client sends ``_request_timeout=None`` (no timeout at all) from discovery, the typed APIs
    and the dynamic client alike; urllib3's own retries would re-send a timed-out read three
    times more, so its read retries are off (``Kube._call`` retries, with backoff, and only what
    is idempotent).
    """
    if getattr(api_client, "_thinkube_bounded", False):
        return
    from urllib3.util.retry import Retry

    original = api_client.call_api

    def call_api(*args: Any, _request_timeout: Any = None, **kwargs: Any) -> Any:
        return original(*args, _request_timeout=_request_timeout or timeouts.pair(), **kwargs)

    api_client.call_api = call_api
    pool = getattr(getattr(api_client, "rest_client", None), "pool_manager", None)
    if pool is not None:
        # a 429's Retry-After is honoured by Kube._call, which sees the answer (urllib3 would
        # otherwise turn a second 429 into "Max retries exceeded")
        pool.connection_pool_kw["retries"] = Retry(
            total=2,
            connect=2,
            read=0,
            status=0,
            other=0,
            redirect=0,
            respect_retry_after_header=False,
        )
        pool.clear()
    api_client._thinkube_bounded = True


def _retryable_status(exc: Any) -> bool:
    status = getattr(exc, "status", None)
    if status in RETRY_STATUSES:
        return True
    # "the object has been modified" is worth another try; a field-manager conflict is not
    # (a StatusCause's type is serialised as "reason")
    if status == 409:
        _, _, data = _status_of(exc)
        causes = (data.get("details") or {}).get("causes") or []
        return data.get("reason") == "Conflict" and not any(
            c.get("reason") == "FieldManagerConflict" for c in causes
        )
    return False


def _api_error(exc: Any, what: str, ref: ObjectRef | None, secrets: list[str]) -> KubeError:
    status, message, data = _status_of(exc)
    message = _redact(message, secrets)
    causes = (data.get("details") or {}).get("causes") or []
    if status == 409 and any(c.get("reason") == "FieldManagerConflict" for c in causes):
        return Conflict(
            what,
            ref=ref,
            status=409,
            reason=_conflict_reason(data, message),
            hint="Another field manager owns these fields: re-run with --force-conflicts to "
            "take them over on purpose.",
            setting="force_conflicts",
        )
    if status == 409 and data.get("reason") == "Conflict":
        return KubeError(
            what,
            ref=ref,
            status=409,
            reason=message,
            hint="The object changed while it was written: re-run.",
            transient=True,
        )
    return KubeError(
        what,
        ref=ref,
        status=status,
        reason=message,
        hint=_hint_for(status, ref),
        transient=_retryable_status(exc),
    )


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, the reason urllib3 wrapped in it, and their causes."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        cur = todo.pop()
        if cur is None or id(cur) in seen:
            continue
        seen.add(id(cur))
        yield cur
        reason = getattr(cur, "reason", None)
        todo += [
            reason if isinstance(reason, BaseException) else None,
            cur.__cause__,
            cur.__context__,
            *(a for a in getattr(cur, "args", ()) if isinstance(a, BaseException)),
        ]


def _transport_kind(exc: BaseException) -> str:
    """refused | connect-timeout | timeout | reset | tls | other."""
    import http.client
    import ssl

    from urllib3 import exceptions as u3

    chain = list(_causes(exc))
    for cur in chain:
        if isinstance(cur, u3.NewConnectionError | ConnectionRefusedError | u3.NameResolutionError):
            return "refused"
    for cur in chain:
        if isinstance(cur, u3.ConnectTimeoutError):
            return "connect-timeout"
    for cur in chain:
        if isinstance(cur, u3.SSLError | ssl.SSLError):
            return "tls"
        if isinstance(cur, u3.ReadTimeoutError | TimeoutError | socket.timeout):
            return "timeout"
    for cur in chain:
        if isinstance(
            cur,
            u3.ProtocolError
            | ConnectionError
            | http.client.RemoteDisconnected
            | http.client.IncompleteRead
            | u3.IncompleteRead,
        ):
            return "reset"
    return "other"


def _connection_error(
    exc: BaseException,
    server: str,
    *,
    what: str = "Connecting",
    ref: ObjectRef | None = None,
    timeouts: Timeouts | None = None,
    waited: float | None = None,
) -> KubeError:
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException) and exc.status:  # an answer, not a network problem
        return _api_error(exc, what, ref, [])
    timeouts = timeouts or Timeouts()
    kind = _transport_kind(exc)
    text = str(exc)
    if kind == "refused":
        return KubeError(
            what,
            ref=ref,
            reason=f"cannot reach the API server at {server} (connection refused)",
            hint="Is the cluster up and is this the right context? (Without a cluster, "
            "`tk-devpi install plan` and `tk-devpi install render --out DIR` still work.)",
        )
    if kind in ("timeout", "connect-timeout"):
        error = KubeError(
            what,
            ref=ref,
            reason=f"the API server at {server} did not answer within "
            f"{waited if waited is not None else timeouts.read:g}s"
            if kind == "timeout"
            else f"no connection to the API server at {server} within {timeouts.connect:g}s",
            hint="Check the network or VPN to the cluster, then re-run "
            f"(THINKUBE_DEVPI_{'READ' if kind == 'timeout' else 'CONNECT'}_TIMEOUT sets the "
            "limit).",
            transient=True,
        )
        error.timed_out = True
        return error
    if kind == "reset":
        return KubeError(
            what,
            ref=ref,
            reason=f"the connection to {server} was closed before the answer arrived",
            hint="Check the network or VPN to the cluster, then re-run.",
            transient=True,
        )
    if kind == "tls" or "CERTIFICATE_VERIFY_FAILED" in text:
        return KubeError(
            what,
            ref=ref,
            reason=f"TLS verification of {server} failed",
            hint="The kubeconfig's certificate-authority-data does not match the server.",
        )
    first = text.splitlines()[0][:200] if text else ""
    return KubeError(what, ref=ref, reason=f"{type(exc).__name__}: {first}")
