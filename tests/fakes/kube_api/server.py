"""A fake kube-apiserver for tests.

It serves real HTTP on 127.0.0.1 from a daemon thread of the test process, so the unchanged
official ``kubernetes`` client (typed APIs, ``DynamicClient``, ``watch.Watch``) talks to it as to
a cluster. It keeps objects in memory and behaves like a real server where tests can tell:
discovery, CRUD, the four PATCH types, server-side apply with managed fields and conflicts,
resourceVersion/generation that only move on real changes, status subresources, selectors,
watches with history and 410 Gone, pod logs, Status errors, schema validation of built-in kinds
with ``kubernetes-validate``, bearer-token authentication and per-test RBAC denials.

Tests play the controllers with helpers such as :meth:`FakeKubeAPI.make_deployment_ready`.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import io
import json
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from fakes import http
from fakes.controllers import ControllerBehaviour
from fakes.kube_api.chaos import Chaos, Fault
from fakes.kube_api.chaos import reset as chaos_reset
from fakes.kube_api.errors import (
    ApiError,
    _details,
    bad_request,
    conflict_modified,
    invalid,
    method_not_allowed,
    name_mismatch,
    not_found,
    ns_mismatch,
    ns_not_found,
    path_not_found,
)
from fakes.kube_api.fields import (
    _MISSING,
    _delete_path,
    _get_path,
    decode_fields,
    encode_fields,
    field_set,
    json_merge_patch,
    json_patch,
    merge_apply,
    path_text,
    strategic_merge_patch,
)
from fakes.kube_api.model import (
    APPLY_CT,
    BUILTIN_RESOURCES,
    CRD_SETS,
    JSON,
    JSON_PATCH_CT,
    MERGE_CT,
    SMP_CT,
    SYSTEM_META,
    FieldPath,
    ResourceType,
    _check_labels,
    _check_name,
    _meta,
    _now,
)
from fakes.kube_api.quantity import canonicalize
from fakes.kube_api.schema import schema_errors
from fakes.kube_api.selectors import Selector, _Req, parse_field_selector, parse_label_selector

# --------------------------------------------------------------------------------------------
# records


@dataclass
class RequestRecord:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: bytes
    status: int = 0
    watch: bool = False

    def json(self) -> Any:
        if not self.body:
            return None
        if self.content_type.startswith(APPLY_CT):
            return yaml.safe_load(self.body)
        return json.loads(self.body)


@dataclass
class _Event:
    rv: int
    rt: ResourceType
    namespace: str
    type: str
    old: JSON | None
    new: JSON | None


@dataclass
class _Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    reason: str
    message: str
    times: int | None
    headers: dict[str, str] | None = None


@dataclass
class _Delay:
    method: str
    pattern: re.Pattern[str]
    seconds: float
    watch: bool | None = None  # None: any request; True: watches only; False: no watches


@dataclass
class _Log:
    text: str = ""
    ended: bool = False


@dataclass
class _Managed:
    meta: JSON  # manager, operation, apiVersion, time, subresource?
    paths: set[FieldPath]
    original: set[FieldPath] | None = None

    @property
    def ident(self) -> tuple[str, str, str]:
        return (self.meta["manager"], self.meta["operation"], self.meta.get("subresource", ""))


def _load_managed(obj: JSON | None) -> list[_Managed]:
    out = []
    for e in ((obj or {}).get("metadata") or {}).get("managedFields") or []:
        meta = {k: v for k, v in e.items() if k not in ("fieldsType", "fieldsV1")}
        paths = decode_fields(e.get("fieldsV1") or {})
        out.append(_Managed(meta, paths, set(paths)))
    return out


def _dump_managed(entries: list[_Managed]) -> list[JSON]:
    out = []
    for e in entries:
        if not e.paths:
            continue
        meta = dict(e.meta)
        if e.original != e.paths or "time" not in meta:
            meta["time"] = _now()
        out.append({**meta, "fieldsType": "FieldsV1", "fieldsV1": encode_fields(e.paths)})
    return out


def _strip_for_compare(obj: JSON) -> JSON:
    o = copy.deepcopy(obj)
    _meta(o).pop("resourceVersion", None)
    return o


# --------------------------------------------------------------------------------------------
# the server


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeKubeAPI


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.fake._track(self.connection, True)

    def handle(self) -> None:
        # a client that gave up (a read timeout) or a connection the chaos mode reset: as a real
        # server, carry on quietly
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            super().handle()

    def finish(self) -> None:
        try:
            with contextlib.suppress(OSError):
                super().finish()
        finally:
            self.server.fake._track(self.connection, False)

    wbufsize = 65536  # one send per response: no Nagle/delayed-ACK stalls on keep-alive

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.fake._handle(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET


class _Stream:
    """Chunked transfer encoding writer."""

    def __init__(self, h: BaseHTTPRequestHandler, content_type: str) -> None:
        self.h = h
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Transfer-Encoding", "chunked")
        h.send_header("Cache-Control", "no-cache, private")
        h.end_headers()
        h.wfile.flush()

    def write(self, data: bytes) -> None:
        if data:
            self.h.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.h.wfile.flush()

    def close(self) -> None:
        try:
            self.h.wfile.write(b"0\r\n\r\n")
            self.h.wfile.flush()
        except OSError:
            pass


class FakeKubeAPI(ControllerBehaviour):
    """A fake kube-apiserver on 127.0.0.1; use as a context manager or start()/stop()."""

    def __init__(
        self,
        crds: Iterable[str] = ("argo", "argocd", "gateway"),
        *,
        token: str | None = None,
        user: str = "kubernetes-admin",
        history: int = 1000,
        port: int = 0,
    ) -> None:
        crds = tuple(crds)
        unknown = set(crds) - set(CRD_SETS)
        if unknown:
            raise ValueError(f"unknown CRD sets {sorted(unknown)}; known: {sorted(CRD_SETS)}")
        self.crds = crds
        self.token = token or secrets.token_urlsafe(24)
        self.user = user
        self.history_size = history
        self._port = port
        self.resources: list[ResourceType] = list(BUILTIN_RESOURCES)
        for name in crds:
            self.resources += CRD_SETS[name]
        self._by_gvp: dict[tuple[str, str, str], ResourceType] = {
            (r.group, r.version, r.plural): r for r in self.resources
        }
        self._by_kind: dict[tuple[str, str], ResourceType] = {
            (r.api_version, r.kind): r for r in self.resources
        }
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._objects: dict[tuple[str, str], dict[tuple[str, str], JSON]] = {}
        self._rv = 0
        self._history: list[_Event] = []
        self._compacted_rv = 0
        self._logs: dict[tuple[str, str, str], _Log] = {}
        self._denies: list[tuple[str, str, str | None]] = []
        self._faults: list[_Fault] = []
        self.chaos: Chaos | None = None  # fault injection: set a Chaos to turn it on
        self._delays: list[_Delay] = []
        self._conns: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._ip_counter = 10
        self.requests: list[RequestRecord] = []
        self.url = ""
        with self._lock:
            self._seed()

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> FakeKubeAPI:
        self._stopping.clear()
        server = http.serve(
            _Handler, port=self._port, server_class=_HTTPServer, name="fake-kube", fake=self
        )
        self._server = server
        self._thread = server.thread
        self.port = server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            with self._lock:
                conns = list(self._conns)
            for c in conns:
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeKubeAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    # ---- client configuration ------------------------------------------------------------

    def write_kubeconfig(
        self, path: str | Path, context: str = "fake", namespace: str | None = None
    ) -> Path:
        path = Path(path)
        ctx: JSON = {"cluster": context, "user": f"{context}-user"}
        if namespace:
            ctx["namespace"] = namespace
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": f"{context}-user", "user": {"token": self.token}}],
            "contexts": [{"name": context, "context": ctx}],
            "current-context": context,
            "preferences": {},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        path.chmod(0o600)
        return path

    def api_client(self) -> Any:
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.url
        cfg.api_key = {"authorization": self.token}
        cfg.api_key_prefix = {"authorization": "Bearer"}
        return client.ApiClient(cfg)

    # ---- test controls --------------------------------------------------------------------

    def deny(self, verb: str, resource: str, namespace: str | None = None) -> None:
        """Make matching requests 403 (verb or resource may be "*"; resource like "pods/log")."""
        with self._lock:
            self._denies.append((verb, resource, namespace))

    def fail(
        self,
        method: str,
        path_regex: str,
        status: int = 500,
        reason: str = "InternalError",
        message: str = "an error on the server has prevented the request from succeeding",
        times: int | None = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        """The next ``times`` matching requests (None: all) answer with this Status (and
        ``headers``, such as a 429's Retry-After)."""
        with self._lock:
            self._faults.append(
                _Fault(
                    method.upper(), re.compile(path_regex), status, reason, message, times, headers
                )
            )

    def delay(
        self, method: str, path_regex: str, seconds: float, *, watch: bool | None = None
    ) -> None:
        """Hold matching requests ``seconds`` before answering (``watch``: only watches, or none).

        A long delay is a stall: the connection stays open and silent, as a dropped VPN link.
        """
        with self._lock:
            self._delays.append(_Delay(method.upper(), re.compile(path_regex), seconds, watch))

    def writes(self) -> list[RequestRecord]:
        return [r for r in list(self.requests) if r.method not in ("GET", "HEAD", "OPTIONS")]

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def compact(self) -> None:
        """Forget the watch history, as etcd compaction does (older resourceVersions get 410)."""
        with self._lock:
            if self._history:
                self._compacted_rv = self._history[-1].rv
            self._history.clear()

    @property
    def resource_version(self) -> str:
        return str(self._rv)

    def resource_type(self, api_version: str, kind: str) -> ResourceType:
        try:
            return self._by_kind[(api_version, kind)]
        except KeyError:
            raise KeyError(f"{api_version} {kind} is not served") from None

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> JSON | None:
        rt = self.resource_type(api_version, kind)
        with self._lock:
            obj = self._store(rt).get((namespace or "", name))
            return copy.deepcopy(obj) if obj else None

    def list(self, api_version: str, kind: str, namespace: str | None = None) -> list[JSON]:
        rt = self.resource_type(api_version, kind)
        with self._lock:
            return [
                copy.deepcopy(o)
                for (ns, _), o in sorted(self._store(rt).items())
                if namespace is None or ns == namespace
            ]

    def create(self, obj: JSON, manager: str = "kubectl-create") -> JSON:
        """Create directly (validated, emits ADDED); status in ``obj`` is kept."""
        rt = self.resource_type(obj["apiVersion"], obj["kind"])
        ns = (obj.get("metadata") or {}).get("namespace") if rt.namespaced else None
        if rt.namespaced and not ns:
            ns = "default"
        with self._lock:
            created = self._create(rt, ns, copy.deepcopy(obj), manager, keep_status=True)
            return copy.deepcopy(created)

    def patch_status(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        status: JSON,
        manager: str = "kube-controller-manager",
    ) -> JSON:
        """JSON-merge ``status`` into the object's status, as a controller would."""
        rt = self.resource_type(api_version, kind)
        with self._lock:
            old = self._require(rt, namespace, name)
            new = copy.deepcopy(old)
            new["status"] = json_merge_patch(old.get("status") or {}, status)
            sub = "status" if rt.status else ""
            return copy.deepcopy(self._update(rt, old, new, manager, "Update", sub))

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> None:
        rt = self.resource_type(api_version, kind)
        with self._lock:
            self._delete(rt, self._require(rt, namespace, name), "Background")

    def set_pod_log(
        self, namespace: str, pod: str, text: str, container: str | None = None
    ) -> None:
        with self._cond:
            self._logs[(namespace, pod, container or "")] = _Log(text)
            self._cond.notify_all()

    def append_pod_log(
        self, namespace: str, pod: str, text: str, container: str | None = None
    ) -> None:
        with self._cond:
            self._logs.setdefault((namespace, pod, container or ""), _Log()).text += text
            self._cond.notify_all()

    def end_pod_log(self, namespace: str, pod: str, container: str | None = None) -> None:
        with self._cond:
            self._logs.setdefault((namespace, pod, container or ""), _Log()).ended = True
            self._cond.notify_all()

    # ---- store ------------------------------------------------------------------------------

    def _store(self, rt: ResourceType) -> dict[tuple[str, str], JSON]:
        return self._objects.setdefault((rt.group, rt.plural), {})

    def _require(self, rt: ResourceType, ns: str | None, name: str) -> JSON:
        obj = self._store(rt).get((ns or "", name))
        if obj is None:
            raise not_found(rt, name)
        return obj

    def _seed(self) -> None:
        ns_rt = self.resource_type("v1", "Namespace")
        for n in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self._create(
                ns_rt,
                None,
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}},
                "kube-apiserver",
            )
        crd_rt = self.resource_type("apiextensions.k8s.io/v1", "CustomResourceDefinition")
        for name in self.crds:
            for r in CRD_SETS[name]:
                self._create(crd_rt, None, self._crd_object(r), "kube-apiserver", keep_status=True)

    @staticmethod
    def _crd_object(r: ResourceType) -> JSON:
        names: JSON = {
            "plural": r.plural,
            "singular": r.singular,
            "kind": r.kind,
            "listKind": f"{r.kind}List",
        }
        if r.short_names:
            names["shortNames"] = list(r.short_names)
        version: JSON = {
            "name": r.version,
            "served": True,
            "storage": True,
            "schema": {
                "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
            },
        }
        if r.status:
            version["subresources"] = {"status": {}}
        now = _now()
        return {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{r.plural}.{r.group}"},
            "spec": {
                "group": r.group,
                "names": names,
                "scope": "Namespaced" if r.namespaced else "Cluster",
                "versions": [version],
                "conversion": {"strategy": "None"},
            },
            "status": {
                "acceptedNames": names,
                "storedVersions": [r.version],
                "conditions": [
                    {
                        "type": "NamesAccepted",
                        "status": "True",
                        "lastTransitionTime": now,
                        "reason": "NoConflicts",
                        "message": "no conflicts found",
                    },
                    {
                        "type": "Established",
                        "status": "True",
                        "lastTransitionTime": now,
                        "reason": "InitialNamesAccepted",
                        "message": "the initial names have been accepted",
                    },
                ],
            },
        }

    def _commit(
        self, rt: ResourceType, ns: str, name: str, old: JSON | None, new: JSON | None
    ) -> None:
        self._rv += 1
        store = self._store(rt)
        if new is None:
            assert old is not None
            gone = copy.deepcopy(old)
            _meta(gone)["resourceVersion"] = str(self._rv)
            store.pop((ns, name), None)
            ev = _Event(self._rv, rt, ns, "DELETED", gone, None)
        else:
            _meta(new)["resourceVersion"] = str(self._rv)
            store[(ns, name)] = new
            ev = _Event(
                self._rv, rt, ns, "ADDED" if old is None else "MODIFIED", old, copy.deepcopy(new)
            )
        self._history.append(ev)
        if len(self._history) > self.history_size:
            drop = len(self._history) - self.history_size
            self._compacted_rv = self._history[drop - 1].rv
            del self._history[:drop]
        self._cond.notify_all()

    def _defaults(self, rt: ResourceType, obj: JSON, old: JSON | None) -> None:
        """A few server-side defaults real clusters add."""
        meta = _meta(obj)
        if rt.plural == "namespaces":
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj.setdefault("status", {}).setdefault("phase", "Active")
        elif rt.plural == "secrets":
            string_data = obj.pop("stringData", None) or {}
            if string_data:
                data = obj.setdefault("data", {})
                for k, v in string_data.items():
                    data[k] = base64.b64encode(str(v).encode()).decode()
            obj.setdefault("type", "Opaque")
        elif rt.plural == "services":
            spec = obj.setdefault("spec", {})
            spec.setdefault("type", "ClusterIP")
            spec.setdefault("sessionAffinity", "None")
            old_spec = (old or {}).get("spec") or {}
            if spec["type"] != "ExternalName" and not spec.get("clusterIP"):
                ip = old_spec.get("clusterIP")
                if not ip:
                    self._ip_counter += 1
                    ip = f"10.96.{self._ip_counter // 250}.{self._ip_counter % 250}"
                spec["clusterIP"] = ip
                spec["clusterIPs"] = old_spec.get("clusterIPs") or [ip]
            for p in spec.get("ports") or []:
                if isinstance(p, dict):
                    p.setdefault("protocol", "TCP")
                    p.setdefault("targetPort", p.get("port"))
            obj.setdefault("status", {}).setdefault("loadBalancer", {})
        elif rt.plural == "deployments":
            spec = obj.setdefault("spec", {})
            spec.setdefault("replicas", 1)
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
            spec.setdefault(
                "strategy",
                {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
                },
            )
        elif rt.plural == "persistentvolumeclaims":
            obj.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")
            obj.setdefault("status", {}).setdefault("phase", "Pending")
        elif rt.plural == "pods":
            obj.setdefault("status", {}).setdefault("phase", "Pending")
        if rt.builtin:
            # quantities come back canonical (5120Mi is stored as 5Gi)
            canonicalize(obj.get("spec"))
            canonicalize(obj.get("status"))
        if rt.status:
            obj.setdefault("status", {})

    def _check(self, rt: ResourceType, obj: JSON, old: JSON | None) -> None:
        """Validation a real server does: names, labels, schema, a few cross-field rules."""
        meta = _meta(obj)
        name = meta.get("name", "")
        causes: list[tuple[str, str]] = []
        if (msg := _check_name(rt, name)) is not None:
            causes.append(("metadata.name", msg))
        causes += _check_labels(meta.get("labels"), "metadata.labels")
        if rt.plural == "deployments":
            spec = obj.get("spec") or {}
            sel = ((spec.get("selector") or {}).get("matchLabels")) or {}
            tl = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
            if sel and any(tl.get(k) != v for k, v in sel.items()):
                causes.append(
                    (
                        "spec.template.metadata.labels",
                        f"Invalid value: {json.dumps(tl)}: "
                        "`selector` does not match template `labels`",
                    )
                )
            if old is not None and (old.get("spec") or {}).get("selector") != spec.get("selector"):
                causes.append(
                    (
                        "spec.selector",
                        f"Invalid value: {json.dumps(spec.get('selector'))}: field is immutable",
                    )
                )
        if rt.plural == "secrets" and old is not None and old.get("type") != obj.get("type"):
            causes.append(("type", f'Invalid value: "{obj.get("type")}": field is immutable'))
        if rt.builtin and not causes:
            causes = schema_errors(obj)
        if causes:
            raise invalid(rt, name, causes)

    def _finish(
        self, rt: ResourceType, old: JSON | None, new: JSON, entries: list[_Managed], dry_run: bool
    ) -> JSON:
        """Common tail of every write: defaults, generation, validation, no-op detection, commit."""
        meta = _meta(new)
        ns = meta.get("namespace", "") if rt.namespaced else ""
        self._defaults(rt, new, old)
        managed = _dump_managed(entries)
        if managed:
            meta["managedFields"] = managed
        else:
            meta.pop("managedFields", None)
        if old is not None:
            for k in ("uid", "creationTimestamp", "generation", "deletionTimestamp"):
                if k in old["metadata"]:
                    meta[k] = old["metadata"][k]
                else:
                    meta.pop(k, None)
            meta["resourceVersion"] = old["metadata"]["resourceVersion"]
            if _strip_for_compare(new) == _strip_for_compare(old):
                return old  # a no-op: nothing moves
            if rt.generation:
                skip = ("metadata", "status") if rt.status else ("metadata",)
                a = {k: v for k, v in old.items() if k not in skip}
                b = {k: v for k, v in new.items() if k not in skip}
                if a != b:
                    meta["generation"] = int(old["metadata"].get("generation", 1)) + 1
        else:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = _now()
            if rt.generation:
                meta["generation"] = 1
            meta["resourceVersion"] = "0"
        self._check(rt, new, old)
        if dry_run:
            if old is None:
                meta.pop("resourceVersion", None)
            return new
        self._commit(rt, ns, meta["name"], old, new)
        return new

    def _create(
        self,
        rt: ResourceType,
        ns: str | None,
        body: JSON,
        manager: str,
        keep_status: bool = False,
        dry_run: bool = False,
    ) -> JSON:
        body.setdefault("apiVersion", rt.api_version)
        body.setdefault("kind", rt.kind)
        if body["apiVersion"] != rt.api_version or body["kind"] != rt.kind:
            raise bad_request(
                f"the API version in the data ({body['apiVersion']}) does not match the expected "
                f"API version ({rt.api_version})"
                if body["apiVersion"] != rt.api_version
                else f"the kind in the data ({body['kind']}) does not match the expected kind "
                f"({rt.kind})"
            )
        meta = _meta(body)
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != ns:
                raise ns_mismatch()
            meta["namespace"] = ns
            if ns not in {n for _, n in self._store(self.resource_type("v1", "Namespace"))}:
                raise ns_not_found(ns or "")
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = meta["generateName"] + "".join(
                    secrets.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5)
                )
            else:
                raise invalid(
                    rt, "", [("metadata.name", "Required value: name or generateName is required")]
                )
        for k in SYSTEM_META:
            if k not in ("name", "namespace"):
                meta.pop(k, None)
        if (ns or "", meta["name"]) in self._store(rt):
            raise ApiError(
                409,
                "AlreadyExists",
                f'{rt.qualified} "{meta["name"]}" already exists',
                _details(rt, meta["name"]),
            )
        if rt.status and not keep_status:
            body.pop("status", None)
        self._defaults(rt, body, None)
        entries = [
            _Managed(
                {"manager": manager, "operation": "Update", "apiVersion": rt.api_version},
                field_set(body, rt, "main"),
            )
        ]
        if rt.status and body.get("status") and keep_status:
            entries.append(
                _Managed(
                    {
                        "manager": manager,
                        "operation": "Update",
                        "apiVersion": rt.api_version,
                        "subresource": "status",
                    },
                    field_set(body, rt, "status"),
                )
            )
        return self._finish(rt, None, body, entries, dry_run)

    def _update(
        self,
        rt: ResourceType,
        old: JSON,
        new: JSON,
        manager: str,
        operation: str,
        subresource: str,
        dry_run: bool = False,
    ) -> JSON:
        """Write ``new`` over ``old`` (PUT/PATCH semantics) recording an Update manager."""
        if subresource == "status":
            merged = copy.deepcopy(old)
            if "status" in new:
                merged["status"] = copy.deepcopy(new["status"])
            else:
                merged.pop("status", None)
            new = merged
        else:
            new = copy.deepcopy(new)
            if rt.status:
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
        new["apiVersion"], new["kind"] = rt.api_version, rt.kind
        meta = _meta(new)
        meta["name"] = old["metadata"]["name"]
        if rt.namespaced:
            meta["namespace"] = old["metadata"]["namespace"]
        self._defaults(rt, new, old)
        scope = "status" if subresource == "status" else "main"
        old_f, new_f = field_set(old, rt, scope), field_set(new, rt, scope)
        changed = {
            p
            for p in new_f
            if p not in old_f or (p[-1] != "." and _get_path(old, p) != _get_path(new, p))
        }
        removed = old_f - new_f
        entries = _load_managed(old)
        ident = (manager, operation, subresource)
        mine = next((e for e in entries if e.ident == ident), None)
        for e in entries:
            e.paths -= removed
            if e is not mine:
                e.paths -= changed
        if changed:
            if mine is None:
                meta_e: JSON = {
                    "manager": manager,
                    "operation": operation,
                    "apiVersion": rt.api_version,
                }
                if subresource:
                    meta_e["subresource"] = subresource
                mine = _Managed(meta_e, set())
                entries.append(mine)
            mine.paths |= changed
        return self._finish(rt, old, new, entries, dry_run)

    def _apply(
        self,
        rt: ResourceType,
        ns: str | None,
        name: str,
        body: JSON,
        manager: str,
        force: bool,
        subresource: str,
        dry_run: bool,
    ) -> JSON:
        if not isinstance(body, dict):
            raise bad_request("error decoding YAML: apply patch must be an object")
        if not body.get("kind"):
            raise bad_request(f"Object 'Kind' is missing in '{json.dumps(body)}'")
        if body.get("apiVersion") != rt.api_version or body.get("kind") != rt.kind:
            raise bad_request(
                f"the API version in the data ({body.get('apiVersion')}) does not match the "
                f"expected API version ({rt.api_version})"
            )
        bmeta = body.get("metadata") or {}
        if bmeta.get("name") and bmeta["name"] != name:
            raise name_mismatch(bmeta["name"], name)
        if rt.namespaced and bmeta.get("namespace") and bmeta["namespace"] != ns:
            raise ns_mismatch()
        old = self._store(rt).get((ns or "", name))
        if old is None and subresource:
            raise not_found(rt, name)
        if (
            old is not None
            and bmeta.get("resourceVersion")
            and bmeta["resourceVersion"] != old["metadata"]["resourceVersion"]
        ):
            raise conflict_modified(rt, name)
        if (
            old is None
            and rt.namespaced
            and ns not in {n for _, n in self._store(self.resource_type("v1", "Namespace"))}
        ):
            raise ns_not_found(ns or "")
        scope = "status" if subresource == "status" else "main"
        applied = copy.deepcopy(body)
        if scope == "status":
            applied = {
                "apiVersion": rt.api_version,
                "kind": rt.kind,
                "status": applied.get("status") or {},
            }
        elif rt.status:
            applied.pop("status", None)
        amf = applied.setdefault("metadata", {})
        for k in SYSTEM_META:
            amf.pop(k, None)
        applied_f = field_set(applied, rt, scope)
        live = (
            copy.deepcopy(old)
            if old is not None
            else {
                "apiVersion": rt.api_version,
                "kind": rt.kind,
                "metadata": {"name": name},
            }
        )
        if old is None and rt.namespaced:
            live["metadata"]["namespace"] = ns
        entries = _load_managed(old)
        ident = (manager, "Apply", subresource)
        mine = next((e for e in entries if e.ident == ident), None)
        # conflicts: leaves the applier sets to a different value than another manager owns
        conflicts: list[tuple[_Managed, FieldPath]] = []
        for p in sorted(applied_f):
            if p[-1] == ".":
                continue
            for e in entries:
                if e is mine or p not in e.paths:
                    continue
                lv = _get_path(live, p)
                if lv is not _MISSING and lv != _get_path(applied, p):
                    conflicts.append((e, p))
        if conflicts and not force:
            raise self._apply_conflict(conflicts)
        for e, p in conflicts:
            e.paths.discard(p)
        # fields this manager owned and no longer sends go, unless someone else owns them
        previously = mine.paths if mine else set()
        others = [e for e in entries if e is not mine]
        for p in sorted(previously - applied_f, key=len, reverse=True):
            if any(p in e.paths for e in others):
                continue
            if p[-1] == ".":
                item = p[:-1]
                if not any(q[: len(item)] == item for e in others for q in e.paths):
                    _delete_path(live, item)
            else:
                _delete_path(live, p)
                self._prune_empty(live, p[:-1], entries)
        new = merge_apply(live, applied, rt)
        if mine is None:
            meta_e: JSON = {"manager": manager, "operation": "Apply", "apiVersion": rt.api_version}
            if subresource:
                meta_e["subresource"] = subresource
            mine = _Managed(meta_e, set())
            entries.append(mine)
        mine.paths = set(applied_f)
        mine.meta["apiVersion"] = rt.api_version
        if old is None:
            meta = _meta(new)
            for k in SYSTEM_META:
                if k not in ("name", "namespace"):
                    meta.pop(k, None)
            if rt.status:
                new.pop("status", None)
        if subresource != "status" and old is not None and rt.status and "status" in old:
            new["status"] = copy.deepcopy(old["status"])
        return self._finish(rt, old, new, entries, dry_run)

    @staticmethod
    def _prune_empty(live: JSON, parent: FieldPath, entries: list[_Managed]) -> None:
        while len(parent) > 1:
            node = _get_path(live, parent)
            if not (isinstance(node, dict) and not node):
                return
            if parent[-1].startswith("k:") or any(parent in e.paths for e in entries):
                return
            _delete_path(live, parent)
            parent = parent[:-1]

    @staticmethod
    def _apply_conflict(conflicts: list[tuple[_Managed, FieldPath]]) -> ApiError:
        def who(e: _Managed) -> str:
            text = f'conflict with "{e.meta["manager"]}"'
            if e.meta["operation"] == "Update":
                text += f" using {e.meta.get('apiVersion', '')}"
            if e.meta.get("subresource"):
                text += f' with subresource "{e.meta["subresource"]}"'
            return text

        causes = [
            {"reason": "FieldManagerConflict", "message": who(e), "field": path_text(p)}
            for e, p in conflicts
        ]
        n = len(conflicts)
        if n == 1:
            e, p = conflicts[0]
            msg = f"Apply failed with 1 conflict: {who(e)}: {path_text(p)}"
        else:
            groups: dict[str, list[str]] = {}
            for e, p in conflicts:
                groups.setdefault(who(e), []).append(path_text(p))
            parts = []
            for w, paths in groups.items():
                w = w.replace("conflict with", "conflicts with", 1) if len(paths) > 1 else w
                parts.append(f"{w}:\n" + "\n".join(f"- {p}" for p in paths))
            msg = f"Apply failed with {n} conflicts: " + "\n".join(parts)
        return ApiError(409, "Conflict", msg, {"causes": causes})

    def _delete(self, rt: ResourceType, obj: JSON, propagation: str) -> JSON:
        """Delete now; cascades to owned objects and, for a Namespace, to everything in it."""
        meta = obj["metadata"]
        ns = meta.get("namespace", "") if rt.namespaced else ""
        if rt.plural == "namespaces":
            for other in self.resources:
                if not other.namespaced:
                    continue
                for (ons, _), o in sorted(self._store(other).items()):
                    if ons == meta["name"]:
                        self._delete(other, o, "Background")
        if propagation != "Orphan":
            uid = meta.get("uid")
            for other in self.resources:
                if not other.namespaced and rt.namespaced:
                    continue
                for (ons, _), o in sorted(self._store(other).items()):
                    if rt.namespaced and ons != ns:
                        continue
                    refs = o["metadata"].get("ownerReferences") or []
                    if any(r.get("uid") == uid for r in refs) and (
                        (ons, o["metadata"]["name"]) in self._store(other)
                    ):
                        self._delete(other, o, propagation)
        if (ns, meta["name"]) in self._store(rt):
            self._commit(rt, ns, meta["name"], obj, None)
        if rt.plural == "pods":
            for key, log in self._logs.items():
                if key[0] == ns and key[1] == meta["name"]:
                    log.ended = True
        return obj

    # ---- HTTP -------------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        method = h.command
        split = urlsplit(h.path)
        path = split.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        ctype = (h.headers.get("Content-Type") or "").split(";")[0].strip()
        rec = RequestRecord(
            method, path, query, ctype, body, watch=query.get("watch") in ("true", "1")
        )
        with self._lock:
            self.requests.append(rec)
        try:
            self._authenticate(h)
            self._inject(method, path, watch=rec.watch)
            fault = (
                self.chaos.decide(method, path, stream=rec.watch or path.endswith("/log"))
                if self.chaos is not None
                else None
            )
            if fault is None:
                self._route(h, rec)
            elif not self._chaos_before(h, rec, fault):
                if fault.after:  # applied, then the answer is lost
                    h.wfile = io.BytesIO()  # type: ignore[assignment]
                    self._route(h, rec)
                    self._chaos_lose(h, fault)
                else:
                    self._route(h, rec)
        except ApiError as e:
            self._send_json(h, rec, e.code, e.status(), e.headers)
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True
        except Exception as e:  # a bug in the fake: say so like a server would
            self._send_json(
                h, rec, 500, ApiError(500, "InternalError", f"fake kube-apiserver: {e!r}").status()
            )
            raise

    def _chaos_before(self, h: BaseHTTPRequestHandler, rec: RequestRecord, fault: Fault) -> bool:
        """Fail the request before it is applied; True when it was answered (or dropped)."""
        assert self.chaos is not None
        what = f"{rec.path.rsplit('/', 1)[-1]}"
        if fault.kind == "500":
            raise ApiError(500, "InternalError", "etcdserver: request timed out")
        if fault.kind == "409":
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on "{what}": the object has been modified; '
                "please apply your changes to the latest version and try again",
                {"name": what},
            )
        if fault.kind == "429":
            wait = self.chaos.retry_after
            raise ApiError(
                429,
                "TooManyRequests",
                "Too many requests, please try again later.",
                {"retryAfterSeconds": wait},
                {"Retry-After": str(wait)},
            )
        if fault.kind == "slow":
            self._stopping.wait(self.chaos.slow_seconds)
            return False
        if fault.after:
            return False
        self._chaos_lose(h, fault)
        return True

    def _chaos_lose(self, h: BaseHTTPRequestHandler, fault: Fault) -> None:
        """No answer: an RST now, or silence until the client gives up (then an RST)."""
        assert self.chaos is not None
        h.wfile = io.BytesIO()  # type: ignore[assignment]  # nothing more reaches the client
        h.close_connection = True
        if fault.kind == "stall":
            self._stopping.wait(self.chaos.stall_seconds)
        chaos_reset(h.connection)

    def _authenticate(self, h: BaseHTTPRequestHandler) -> None:
        auth = h.headers.get("Authorization") or ""
        if auth != f"Bearer {self.token}":
            raise ApiError(401, "Unauthorized", "Unauthorized")

    def _inject(self, method: str, path: str, watch: bool = False) -> None:
        """Delays and faults; a fault for method ``WATCH`` matches watch requests only."""
        delay = 0.0
        with self._lock:
            for d in self._delays:
                if (
                    d.method in (method, "*")
                    and d.pattern.search(path)
                    and d.watch in (None, watch)
                ):
                    delay += d.seconds
            fault = None
            for f in self._faults:
                if (
                    (f.method in (method, "*") or (f.method == "WATCH" and watch))
                    and f.pattern.search(path)
                    and (f.times is None or f.times > 0)
                ):
                    fault = f
                    if f.times is not None:
                        f.times -= 1
                    break
        if delay:
            self._stopping.wait(delay)
        if fault is not None:
            raise ApiError(fault.status, fault.reason, fault.message, {}, fault.headers)

    def _authorize(
        self, verb: str, rt: ResourceType, ns: str | None, name: str | None, sub: str | None
    ) -> None:
        resource = rt.plural + (f"/{sub}" if sub else "")
        for v, r, n in self._denies:
            if v in (verb, "*") and r in (resource, "*") and (n is None or n == ns):
                what = f'{rt.qualified} "{name}"' if name else rt.qualified
                where = f'in the namespace "{ns}"' if ns else "at the cluster scope"
                raise ApiError(
                    403,
                    "Forbidden",
                    f'{what} is forbidden: User "{self.user}" cannot {verb} resource "{resource}" '
                    f'in API group "{rt.group}" {where}',
                    _details(rt, name),
                )

    def _send_json(
        self,
        h: BaseHTTPRequestHandler,
        rec: RequestRecord,
        code: int,
        obj: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(obj).encode()
        rec.status = code
        try:
            h.send_response(code)
            for key, value in (headers or {}).items():
                h.send_header(key, value)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(data)
        except OSError:
            h.close_connection = True

    def _send_text(self, h: BaseHTTPRequestHandler, rec: RequestRecord, text: str) -> None:
        data = text.encode()
        rec.status = 200
        h.send_response(200)
        h.send_header("Content-Type", "text/plain")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _discovery(self, parts: list[str]) -> Any:
        if parts == ["version"]:
            return {
                "major": "1",
                "minor": "31",
                "gitVersion": "v1.31.4",
                "gitCommit": "a78aa47129b8539636eb86a9d00e31b2720fe06b",
                "gitTreeState": "clean",
                "buildDate": "2024-12-10T18:44:53Z",
                "goVersion": "go1.22.9",
                "compiler": "gc",
                "platform": "linux/amd64",
            }
        if parts == ["api"]:
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}
                ],
            }
        groups: dict[str, list[str]] = {}
        for r in self.resources:
            if r.group:
                versions = groups.setdefault(r.group, [])
                if r.version not in versions:
                    versions.append(r.version)

        def group_obj(g: str) -> JSON:
            vs = [{"groupVersion": f"{g}/{v}", "version": v} for v in groups[g]]
            return {"name": g, "versions": vs, "preferredVersion": vs[0]}

        if parts == ["apis"]:
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [group_obj(g) for g in groups],
            }
        if len(parts) == 2 and parts[0] == "apis" and parts[1] in groups:
            return {"kind": "APIGroup", "apiVersion": "v1", **group_obj(parts[1])}
        return None

    def _resource_list(self, group: str, version: str) -> JSON:
        out: list[JSON] = []
        for r in self.resources:
            if (r.group, r.version) != (group, version):
                continue
            entry: JSON = {
                "name": r.plural,
                "singularName": r.singular,
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": list(r.verbs),
            }
            if r.short_names:
                entry["shortNames"] = list(r.short_names)
            if r.categories:
                entry["categories"] = list(r.categories)
            entry["storageVersionHash"] = base64.b64encode(
                hashlib.sha256(f"{r.group}/{r.version}/{r.kind}".encode()).digest()[:8]
            ).decode()
            out.append(entry)
            if r.status:
                out.append(
                    {
                        "name": f"{r.plural}/status",
                        "singularName": "",
                        "namespaced": r.namespaced,
                        "kind": r.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
            for sub in r.subresources:
                out.append(
                    {
                        "name": f"{r.plural}/{sub}",
                        "singularName": "",
                        "namespaced": r.namespaced,
                        "kind": r.kind,
                        "verbs": ["get"],
                    }
                )
        gv = f"{group}/{version}" if group else version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}

    def _route(self, h: BaseHTTPRequestHandler, rec: RequestRecord) -> None:
        parts = [p for p in rec.path.split("/") if p]
        method = rec.method
        if method == "HEAD" or method == "OPTIONS":
            raise method_not_allowed()
        disc = self._discovery(parts)
        if disc is not None:
            if method != "GET":
                raise method_not_allowed()
            self._send_json(h, rec, 200, disc)
            return
        if len(parts) >= 2 and parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise path_not_found()
        if not any((r.group, r.version) == (group, version) for r in self.resources):
            raise path_not_found()
        if not rest:
            if method != "GET":
                raise method_not_allowed()
            self._send_json(h, rec, 200, self._resource_list(group, version))
            return
        ns: str | None = None
        if (
            rest[0] == "namespaces"
            and len(rest) >= 3
            and (rt_ns := self._by_gvp.get((group, version, rest[2]))) is not None
            and rt_ns.namespaced
        ):
            ns, rest = rest[1], rest[2:]
        rt = self._by_gvp.get((group, version, rest[0]))
        if rt is None or len(rest) > 3:
            raise path_not_found()
        if ns is not None and not rt.namespaced:
            raise path_not_found()
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if name is not None and rt.namespaced and ns is None:
            raise path_not_found()
        if sub is not None and not ((sub == "status" and rt.status) or sub in rt.subresources):
            raise path_not_found()
        self._dispatch(h, rec, rt, ns, name, sub)

    def _verb(self, method: str, name: str | None, watch: bool) -> str:
        if method == "GET":
            return "watch" if watch else ("get" if name else "list")
        return {
            "POST": "create",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete" if name else "deletecollection",
        }.get(method, "")

    def _dispatch(
        self,
        h: BaseHTTPRequestHandler,
        rec: RequestRecord,
        rt: ResourceType,
        ns: str | None,
        name: str | None,
        sub: str | None,
    ) -> None:
        method, q = rec.method, rec.query
        verb = self._verb(method, name, rec.watch)
        if sub == "log":
            if method != "GET":
                raise method_not_allowed()
            verb = "get"
        elif sub == "status":
            if method not in ("GET", "PUT", "PATCH"):
                raise method_not_allowed()
        elif (name is None and method not in ("GET", "POST", "DELETE")) or (
            name is not None and method == "POST"
        ):
            raise method_not_allowed()
        if verb not in rt.verbs and sub != "log":
            raise method_not_allowed()
        if method == "POST" and rt.namespaced and ns is None:
            raise path_not_found()
        self._authorize(verb, rt, ns, name, sub)
        dry_run = q.get("dryRun") == "All"
        if method == "GET" and sub == "log":
            assert name is not None
            self._serve_log(h, rec, ns or "", name)
            return
        if method == "GET" and rec.watch:
            self._serve_watch(h, rec, rt, ns, name)
            return
        if method == "GET" and name is None:
            with self._lock:
                self._send_json(h, rec, 200, self._list(rt, ns, q))
            return
        if method == "GET":
            assert name is not None
            with self._lock:
                obj = copy.deepcopy(self._require(rt, ns, name))
            self._send_json(h, rec, 200, obj)
            return
        manager = q.get("fieldManager") or self._default_manager(h)
        if method == "POST":
            body = self._json_body(rec)
            with self._lock:
                obj = self._create(rt, ns, body, manager, dry_run=dry_run)
                obj = copy.deepcopy(obj)
            self._send_json(h, rec, 201, obj)
            return
        if method == "DELETE" and name is None:
            with self._lock:
                sel = self._selector(rt, q)
                for (ons, _), o in sorted(self._store(rt).items()):
                    if (ns is None or ons == ns) and sel.matches(o) and not dry_run:
                        self._delete(rt, o, "Background")
            self._send_json(
                h,
                rec,
                200,
                {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"},
            )
            return
        assert name is not None
        if method == "DELETE":
            opts = self._json_body(rec) if rec.body else {}
            prop = q.get("propagationPolicy") or opts.get("propagationPolicy") or "Background"
            if prop not in ("Orphan", "Background", "Foreground"):
                raise invalid(
                    rt,
                    name,
                    [
                        (
                            "propagationPolicy",
                            f'Unsupported value: "{prop}": supported values: '
                            '"Foreground", "Background", "Orphan"',
                        )
                    ],
                )
            with self._lock:
                obj = self._require(rt, ns, name)
                pre = opts.get("preconditions") or {}
                if (pre.get("uid") and pre["uid"] != obj["metadata"]["uid"]) or (
                    pre.get("resourceVersion")
                    and pre["resourceVersion"] != obj["metadata"]["resourceVersion"]
                ):
                    raise ApiError(
                        409,
                        "Conflict",
                        f'Operation cannot be fulfilled on {rt.qualified} "{name}": '
                        "Precondition failed",
                        _details(rt, name),
                    )
                if not dry_run:
                    self._delete(rt, obj, prop)
                obj = copy.deepcopy(obj)
            if rt.plural in ("pods", "namespaces"):
                obj["metadata"]["deletionTimestamp"] = _now()
                if rt.plural == "namespaces":
                    obj.setdefault("status", {})["phase"] = "Terminating"
                self._send_json(h, rec, 200, obj)
            else:
                details = _details(rt, name)
                details["uid"] = obj["metadata"]["uid"]
                self._send_json(
                    h,
                    rec,
                    200,
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Success",
                        "details": details,
                    },
                )
            return
        subresource = sub or ""
        if method == "PUT":
            body = self._json_body(rec)
            bmeta = body.get("metadata") or {}
            if bmeta.get("name") and bmeta["name"] != name:
                raise name_mismatch(bmeta["name"], name)
            with self._lock:
                old = self._require(rt, ns, name)
                if (
                    bmeta.get("resourceVersion")
                    and bmeta["resourceVersion"] != old["metadata"]["resourceVersion"]
                ):
                    raise conflict_modified(rt, name)
                obj = copy.deepcopy(
                    self._update(rt, old, body, manager, "Update", subresource, dry_run)
                )
            self._send_json(h, rec, 200, obj)
            return
        # PATCH
        if rec.content_type == APPLY_CT:
            if not q.get("fieldManager"):
                raise ApiError(
                    422,
                    "Invalid",
                    'PatchOptions.meta.k8s.io "" is invalid: fieldManager: '
                    "Required value: is required for apply patch",
                    {
                        "group": "meta.k8s.io",
                        "kind": "PatchOptions",
                        "causes": [
                            {
                                "reason": "FieldValueRequired",
                                "message": "Required value: is required for apply patch",
                                "field": "fieldManager",
                            }
                        ],
                    },
                )
            try:
                body = yaml.safe_load(rec.body or b"{}")
            except yaml.YAMLError as e:
                raise bad_request(f"error decoding YAML: {e}") from None
            force = q.get("force") in ("true", "1")
            with self._lock:
                existed = (ns or "", name) in self._store(rt)
                obj = copy.deepcopy(
                    self._apply(rt, ns, name, body, q["fieldManager"], force, subresource, dry_run)
                )
            self._send_json(h, rec, 200 if existed else 201, obj)
            return
        if rec.content_type not in (MERGE_CT, JSON_PATCH_CT, SMP_CT) or (
            rec.content_type == SMP_CT and not rt.builtin
        ):
            accepted = (
                [JSON_PATCH_CT, MERGE_CT, APPLY_CT]
                if not rt.builtin
                else [JSON_PATCH_CT, MERGE_CT, SMP_CT, APPLY_CT]
            )
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: "
                + ", ".join(accepted),
                {},
            )
        patch = self._json_body(rec, allow_list=rec.content_type == JSON_PATCH_CT)
        with self._lock:
            old = self._require(rt, ns, name)
            try:
                if rec.content_type == MERGE_CT:
                    new = json_merge_patch(old, patch)
                elif rec.content_type == SMP_CT:
                    new = strategic_merge_patch(old, patch, rt)
                else:
                    new = json_patch(old, patch)
            except (ValueError, KeyError, IndexError, TypeError) as e:
                raise ApiError(
                    422,
                    "Invalid",
                    f"the server rejected our request due to an error in our request: {e}",
                    _details(rt, name),
                ) from None
            if not isinstance(new, dict):
                raise bad_request("patched object is not an object")
            nmeta = new.get("metadata") or {}
            if (
                nmeta.get("resourceVersion")
                and nmeta["resourceVersion"] != old["metadata"]["resourceVersion"]
            ):
                raise conflict_modified(rt, name)
            obj = copy.deepcopy(self._update(rt, old, new, manager, "Update", subresource, dry_run))
        self._send_json(h, rec, 200, obj)

    @staticmethod
    def _default_manager(h: BaseHTTPRequestHandler) -> str:
        ua = h.headers.get("User-Agent") or ""
        return ua.split("/")[0] or "kubectl"

    @staticmethod
    def _json_body(rec: RequestRecord, allow_list: bool = False) -> Any:
        try:
            body = json.loads(rec.body or b"{}")
        except ValueError as e:
            raise bad_request(f"error decoding JSON body: {e}") from None
        if not isinstance(body, dict) and not (allow_list and isinstance(body, list)):
            raise bad_request("the request body must be a JSON object")
        return body

    def _selector(self, rt: ResourceType, q: dict[str, str]) -> Selector:
        return Selector(
            parse_label_selector(q.get("labelSelector", "")),
            parse_field_selector(rt, q.get("fieldSelector", "")),
        )

    def _list(self, rt: ResourceType, ns: str | None, q: dict[str, str]) -> JSON:
        sel = self._selector(rt, q)
        items = []
        for (ons, _), o in sorted(self._store(rt).items()):
            if (ns is None or ons == ns) and sel.matches(o):
                item = copy.deepcopy(o)
                if rt.builtin:  # a real server leaves these out of built-in list items
                    item.pop("apiVersion", None)
                    item.pop("kind", None)
                items.append(item)
        meta: JSON = {"resourceVersion": str(self._rv)}
        start = 0
        if q.get("continue"):
            try:
                start = int(base64.b64decode(q["continue"]).decode())
            except ValueError:
                raise ApiError(400, "BadRequest", "continue key is not valid") from None
        limit = int(q.get("limit") or 0)
        if limit > 0 and start + limit < len(items):
            meta["continue"] = base64.b64encode(str(start + limit).encode()).decode()
            meta["remainingItemCount"] = len(items) - start - limit
            items = items[start : start + limit]
        else:
            items = items[start:]
        return {
            "kind": f"{rt.kind}List",
            "apiVersion": rt.api_version,
            "metadata": meta,
            "items": items,
        }

    # ---- streams ------------------------------------------------------------------------------

    def _serve_watch(
        self,
        h: BaseHTTPRequestHandler,
        rec: RequestRecord,
        rt: ResourceType,
        ns: str | None,
        name: str | None,
    ) -> None:
        q = rec.query
        sel = self._selector(rt, q)
        if name:
            sel.fields.append(_Req("metadata.name", "=", (name,)))
        timeout = float(q.get("timeoutSeconds") or 1800)
        deadline = time.monotonic() + timeout
        rv_param = q.get("resourceVersion") or ""
        initial: list[JSON] = []
        with self._lock:
            if rv_param in ("", "0"):
                for (ons, _), o in sorted(self._store(rt).items()):
                    if (ns is None or ons == ns) and sel.matches(o):
                        initial.append({"type": "ADDED", "object": copy.deepcopy(o)})
                cursor = self._rv
                gone = None
            else:
                try:
                    cursor = int(rv_param)
                except ValueError:
                    raise bad_request(f'invalid resource version: "{rv_param}"') from None
                gone = None
                if cursor < self._compacted_rv:
                    gone = {
                        "type": "ERROR",
                        "object": {
                            "kind": "Status",
                            "apiVersion": "v1",
                            "metadata": {},
                            "status": "Failure",
                            "message": f"too old resource version: {cursor} "
                            f"({self._compacted_rv + 1})",
                            "reason": "Expired",
                            "code": 410,
                        },
                    }
        rec.status = 200
        stream = _Stream(h, "application/json")
        try:
            if gone is not None:
                stream.write(json.dumps(gone).encode() + b"\n")
                return
            for ev in initial:
                stream.write(json.dumps(ev).encode() + b"\n")
            while not self._stopping.is_set():
                with self._cond:
                    pending = [e for e in self._history if e.rv > cursor]
                    if not pending:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            break
                        self._cond.wait(min(remaining, 0.5))
                        continue
                out = []
                for e in pending:
                    cursor = e.rv
                    if e.rt != rt or (ns is not None and e.namespace != ns):
                        continue
                    ev = self._filter_event(e, sel)
                    if ev is not None:
                        out.append(json.dumps(ev).encode() + b"\n")
                stream.write(b"".join(out))
                if time.monotonic() >= deadline:
                    break
        except OSError:
            h.close_connection = True
            return
        finally:
            stream.close()

    @staticmethod
    def _filter_event(e: _Event, sel: Selector) -> JSON | None:
        old_m = e.old is not None and sel.matches(e.old)
        new_m = e.new is not None and sel.matches(e.new)
        if e.type == "DELETED":
            return {"type": "DELETED", "object": e.old} if old_m else None
        if e.type == "ADDED":
            return {"type": "ADDED", "object": e.new} if new_m else None
        if old_m and new_m:
            return {"type": "MODIFIED", "object": e.new}
        if new_m:
            return {"type": "ADDED", "object": e.new}
        if old_m:
            return {"type": "DELETED", "object": e.new}
        return None

    def _serve_log(self, h: BaseHTTPRequestHandler, rec: RequestRecord, ns: str, pod: str) -> None:
        q = rec.query
        prt = self.resource_type("v1", "Pod")
        with self._lock:
            obj = self._require(prt, ns, pod)
            containers = [c.get("name") for c in (obj.get("spec") or {}).get("containers") or []]
            container = q.get("container") or (
                obj["metadata"]
                .get("annotations", {})
                .get("kubectl.kubernetes.io/default-container")
            )
            if container and containers and container not in containers:
                raise bad_request(f"container {container} is not valid for pod {pod}")
            if not container and len(containers) > 1:
                raise bad_request(
                    f"a container name must be specified for pod {pod}, "
                    f"choose one of: [{' '.join(containers)}]"
                )
            container = container or (containers[0] if containers else "")
            key = (ns, pod, container) if (ns, pod, container) in self._logs else (ns, pod, "")
            log = self._logs.setdefault(key, _Log())
            text = log.text
        if q.get("tailLines"):
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-int(q["tailLines"]) :]) if int(q["tailLines"]) > 0 else ""
        if q.get("follow") not in ("true", "1"):
            self._send_text(h, rec, text)
            return
        rec.status = 200
        stream = _Stream(h, "text/plain")
        sent = len(log.text)
        try:
            stream.write(text.encode())
            while not self._stopping.is_set():
                with self._cond:
                    if len(log.text) == sent and not log.ended:
                        self._cond.wait(0.5)
                        continue
                    chunk, sent, ended = log.text[sent:], len(log.text), log.ended
                stream.write(chunk.encode())
                if ended:
                    break
        except OSError:
            h.close_connection = True
            return
        finally:
            stream.close()


def iter_watch_lines(lines: Iterable[bytes]) -> Iterator[JSON]:
    """Parse newline-delimited watch events (handy for raw HTTP tests)."""
    for line in lines:
        if line.strip():
            yield json.loads(line)
