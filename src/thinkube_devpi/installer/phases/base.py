"""The phase interface: plan, apply, status, rollback.

A phase lists the objects it wants (:meth:`Phase.objects`); the defaults here turn that list into a
plan with diffs against the live cluster, an idempotent server-side apply, a status that checks every
object is present, ours and as wanted (then the phase's own health check), and a rollback that
deletes only what is ours and not adopted. Phases override the pieces that differ.

One thing, so one module past 500 lines: the phase interface and its default behaviour.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from thinkube_devpi.errors import Error
from thinkube_devpi.installer.events import (
    Emit,
    LogLine,
    ObjectApplied,
    ObjectDeleted,
    ObjectRef,
    State,
    WaitingFor,
)
from thinkube_devpi.installer.kube import KubeError, is_adopted, is_ours
from thinkube_devpi.installer.manifests import QUANTITY_KEYS, same_quantity
from thinkube_devpi.secrets import Secret

if TYPE_CHECKING:
    from thinkube_devpi.config import Settings
    from thinkube_devpi.installer.kube import Kube


class PhaseError(Error):
    """A phase cannot go on. ``hint`` says what the admin can do."""


@dataclass
class Context:
    """What every phase gets: settings, the cluster (None in plan mode) and the admin's choices."""

    settings: Settings
    kube: Kube | None = None
    adopt: bool = False
    force_conflicts: bool = False
    delete_package_data: str | None = None
    interactive: bool = False
    wait_timeout: float = 300.0
    cancel: threading.Event = field(default_factory=threading.Event)
    # secrets the admin typed in the TUI for this run only, by name (never os.environ)
    session_secrets: dict[str, Secret] = field(default_factory=dict)
    # how the end-to-end test (88) resolves host names (None: the system resolver); tests map
    # them to 127.0.0.1
    resolve: Callable[[str], set[str]] | None = None
    # checks passed by the last end-to-end test in this process (88's row), None when none passed
    verified: int | None = None

    def require_kube(self) -> Kube:
        if self.kube is None:
            raise PhaseError(
                "No cluster connection (plan mode).",
                "Set KUBECONFIG or --context and check the cluster is reachable.",
            )
        return self.kube


# ---------------------------------------------------------------- secrets in manifests


class KeySource:
    """Where one key of a Secret gets its value. ``describe`` is what plans show."""

    describe: str = ""

    def resolve(self, existing: str | None, resolved: dict[str, Secret], ctx: Context) -> Secret:
        raise NotImplementedError


class Generated(KeySource):
    """Random, generated once and kept across re-runs."""

    def __init__(self, nbytes: int = 32) -> None:
        self.nbytes = nbytes
        self.describe = "generated"

    def resolve(self, existing: str | None, resolved: dict[str, Secret], ctx: Context) -> Secret:
        if existing:
            return Secret(existing, source="kept")
        from thinkube_devpi.secrets import generate

        return generate(self.nbytes)


class Derived(KeySource):
    """Computed from other keys of the same Secret (a config file holding a password)."""

    def __init__(self, describe: str, build: Callable[[dict[str, Secret]], str]) -> None:
        self.describe = describe
        self.build = build

    def resolve(self, existing: str | None, resolved: dict[str, Secret], ctx: Context) -> Secret:
        return Secret(self.build(resolved), source="derived")


@dataclass
class SecretObject:
    """A Secret whose values are resolved only at apply time; plans see keys and sources."""

    name: str
    namespace: str
    keys: dict[str, KeySource]
    type: str = "Opaque"
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef("v1", "Secret", self.name, self.namespace)

    def skeleton(self) -> dict[str, Any]:
        """The Secret without data, listing its keys (what `render` writes)."""
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if self.labels:
            meta["labels"] = dict(self.labels)
        meta["annotations"] = {
            **self.annotations,
            "thinkube-devpi/keys": ", ".join(f"{k} ({s.describe})" for k, s in self.keys.items()),
        }
        return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": self.type}

    def resolve(self, live: dict[str, Any] | None, ctx: Context) -> dict[str, Secret]:
        existing = decode_secret_data(live)
        resolved: dict[str, Secret] = {}
        for key, source in self.keys.items():
            resolved[key] = source.resolve(existing.get(key), resolved, ctx)
        return resolved

    def manifest(self, values: dict[str, Secret]) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if self.labels:
            meta["labels"] = dict(self.labels)
        if self.annotations:
            meta["annotations"] = dict(self.annotations)
        data = {k: base64.b64encode(v.reveal().encode()).decode() for k, v in values.items()}
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": meta,
            "type": self.type,
            "data": data,
        }


def decode_secret_data(live: dict[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in ((live or {}).get("data") or {}).items():
        try:
            out[key] = base64.b64decode(value).decode()
        except (ValueError, UnicodeDecodeError):
            continue
    return out


def secret_data_version(live: dict[str, Any] | None) -> str:
    """What a pod-template annotation follows so pods roll when a Secret's *data* changes.

    Not its resourceVersion: a label, an annotation or a managed-fields change moves that too,
    and restarting Redis drops every dashboard session. A digest of the data salted with the
    Secret's uid (every value it covers is generated at random, never typed by a person), cut
    to 16 hex digits: it tells versions apart and says nothing about the values.
    """
    if live is None:
        return "-"
    import hashlib
    import json

    uid = str((live.get("metadata") or {}).get("uid", ""))
    data = json.dumps(live.get("data") or {}, sort_keys=True)
    return hashlib.sha256(f"{uid}\n{data}".encode()).hexdigest()[:16]


@dataclass
class Deferred:
    """An object built only when it is needed, after the objects before it were applied.

    For a Deployment whose pod-template annotation follows a Secret's resourceVersion.
    """

    ref: ObjectRef
    build: Callable[[], dict[str, Any]]


Desired = dict[str, Any] | SecretObject | Deferred


def ref_of(obj: Desired) -> ObjectRef:
    return obj.ref if isinstance(obj, SecretObject | Deferred) else ObjectRef.of(obj)


def realize(obj: Desired) -> dict[str, Any] | SecretObject:
    return obj.build() if isinstance(obj, Deferred) else obj


# ---------------------------------------------------------------- plans and status

PlanAction = Literal["create", "update", "unchanged", "refuse", "unknown"]


@dataclass
class PlanItem:
    ref: ObjectRef
    action: PlanAction
    manifest: dict[str, Any]  # Secrets without data
    changes: list[str] = field(default_factory=list)  # field paths, or per Secret key
    secret_keys: dict[str, str] | None = None  # key -> where its value comes from

    def to_dict(self) -> dict[str, Any]:
        """As ``install plan -o json`` shows it (a Secret's key sources, never its data)."""
        return {
            "ref": str(self.ref),
            "apiVersion": self.ref.api_version,
            "kind": self.ref.kind,
            "name": self.ref.name,
            "namespace": self.ref.namespace,
            "action": self.action,
            "changes": self.changes,
            **({"secret_keys": self.secret_keys} if self.secret_keys is not None else {}),
        }


@dataclass
class Plan:
    phase: str
    number: int
    title: str
    items: list[PlanItem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """As ``install plan -o json`` shows it."""
        return {
            "number": self.number,
            "name": self.phase,
            "title": self.title,
            "notes": self.notes,
            "objects": [item.to_dict() for item in self.items],
        }


@dataclass
class RollbackPreview:
    """What a rollback would delete and what it would keep (with why), read before asking."""

    deletes: list[str] = field(default_factory=list)
    keeps: list[tuple[str, str]] = field(default_factory=list)  # (what, why)

    def extend(self, other: RollbackPreview) -> None:
        self.deletes += other.deletes
        self.keeps += other.keeps

    def lines(self) -> list[str]:
        """The preview as text: the deletes, then the keeps with their reasons."""
        out = ["deletes:"] + [f"  - {d}" for d in self.deletes or ["nothing"]]
        if self.keeps:
            out += ["keeps:"] + [f"  - {what} ({why})" for what, why in self.keeps]
        return out


@dataclass
class PhaseStatus:
    state: State
    reason: str = ""
    details: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """As ``install status -o json`` shows it."""
        return {"state": self.state.value, "reason": self.reason}

    @property
    def healthy(self) -> bool:
        return self.state is State.HEALTHY


def diff_paths(want: Any, live: Any, path: str = "") -> list[str]:
    """Paths where ``live`` does not carry what ``want`` sets (``want`` as a subset of ``live``)."""
    if isinstance(want, dict):
        if not isinstance(live, dict):
            return [path or "."]
        out: list[str] = []
        for key, value in want.items():
            out += diff_paths(value, live.get(key), f"{path}.{key}")
        return out
    if isinstance(want, list):
        if not isinstance(live, list) or len(live) < len(want):
            return [path or "."]
        out = []
        for i, value in enumerate(want):
            name = value.get("name") if isinstance(value, dict) else None
            match = next((x for x in live if isinstance(x, dict) and x.get("name") == name), None)
            out += diff_paths(value, match if name else live[i], f"{path}[{name or i}]")
        return out
    if want == live:
        return []
    # the server stores quantities canonically: 5120Mi comes back as 5Gi
    parent = path.rsplit(".", 2)[-2] if path.count(".") >= 2 else ""
    if parent in QUANTITY_KEYS and same_quantity(want, live):
        return []
    return [path or "."]


def secret_changes(wanted: dict[str, Secret], live: dict[str, Any] | None) -> list[str]:
    """Per key only whether it changes; never the values."""
    existing = decode_secret_data(live)
    out = []
    for key, value in wanted.items():
        if key not in existing:
            out.append(f"{key}: added")
        elif existing[key] != value.reveal():
            out.append(f"{key}: changes")
    return out


# ---------------------------------------------------------------- the phase


class Phase:
    """One install phase. Subclasses set the class attributes and :meth:`objects`."""

    number: ClassVar[int]
    name: ClassVar[str]
    title: ClassVar[str]
    summary: ClassVar[str] = ""
    needs_cluster: ClassVar[bool] = True

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.settings = ctx.settings

    @property
    def label(self) -> str:
        return f"{self.number} {self.name}"

    # -- what the phase wants

    def objects(self) -> list[Desired]:
        """Desired objects in apply order."""
        return []

    def preflight(self) -> None:
        """Checks that must pass before anything is written (raise PhaseError)."""

    def precheck(self) -> None:
        """The checks that need nothing an earlier phase makes. The runner runs every selected
        phase's precheck before the first write of a run, so a bad setting for a late phase
        fails before an early phase writes anything. Most phases' preflight is such a check."""
        self.preflight()

    def wait_ready(self, emit: Emit) -> None:
        """After the objects are applied: wait until they work (watches with timeouts)."""

    def health(self) -> PhaseStatus:
        """Health beyond 'objects present and as wanted' (rollout, Bound, ...)."""
        return PhaseStatus(State.HEALTHY, "all objects present and as wanted")

    # -- plan

    def plan(self) -> Plan:
        plan = Plan(self.name, self.number, self.title)
        kube = self.ctx.kube
        for desired in self.objects():
            obj = realize(desired)
            ref = ref_of(obj)
            secret_keys = (
                {k: s.describe for k, s in obj.keys.items()}
                if isinstance(obj, SecretObject)
                else None
            )
            shown = obj.skeleton() if isinstance(obj, SecretObject) else obj
            if kube is None:
                plan.items.append(PlanItem(ref, "unknown", shown, secret_keys=secret_keys))
                continue
            live = kube.get(ref)
            if live is None:
                plan.items.append(PlanItem(ref, "create", shown, secret_keys=secret_keys))
                continue
            if not is_ours(live) and not self.ctx.adopt:
                plan.items.append(
                    PlanItem(
                        ref,
                        "refuse",
                        shown,
                        ["exists, not made by thinkube-devpi: taken over only when asked (adopt)"],
                        secret_keys,
                    )
                )
                continue
            if isinstance(obj, SecretObject):
                changes = secret_changes(obj.resolve(live, self.ctx), live)
            else:
                changes = diff_paths(obj, live)
            plan.items.append(
                PlanItem(ref, "update" if changes else "unchanged", shown, changes, secret_keys)
            )
        return plan

    # -- apply

    def apply(self, emit: Emit) -> None:
        self.preflight()
        self.ctx.require_kube()
        for obj in self.objects():
            if self.ctx.cancel.is_set():
                raise PhaseError("Cancelled.", "Re-run the phase to finish it.")
            result = self.apply_one(realize(obj))
            emit(ObjectApplied(self.name, result.ref, result.outcome))
        self.wait_ready(emit)

    def apply_one(self, obj: dict[str, Any] | SecretObject) -> Any:
        kube = self.ctx.require_kube()
        if isinstance(obj, SecretObject):
            live = kube.get(obj.ref)
            manifest = obj.manifest(obj.resolve(live, self.ctx))
            return kube.apply(
                manifest,
                force=self.ctx.force_conflicts,
                adopt=self.ctx.adopt,
                live=live,
                known_live=True,
            )
        return kube.apply(obj, force=self.ctx.force_conflicts, adopt=self.ctx.adopt)

    # -- status

    def status(self) -> PhaseStatus:
        kube = self.ctx.kube
        if kube is None:
            return PhaseStatus(State.UNKNOWN, "no cluster (plan mode)")
        missing, drifted, foreign = [], [], []
        for desired in self.objects():
            obj = realize(desired)
            ref = ref_of(obj)
            live = kube.get(ref)
            if live is None:
                missing.append(str(ref))
            elif not is_ours(live):
                foreign.append(str(ref))
            elif isinstance(obj, SecretObject):
                if secret_changes(obj.resolve(live, self.ctx), live):
                    drifted.append(str(ref))
            elif diff_paths(obj, live):
                drifted.append(f"{ref} ({', '.join(diff_paths(obj, live)[:3])})")
        if foreign:
            return PhaseStatus(
                State.FAILED,
                f"not made by thinkube-devpi (taken over only when asked: adopt): "
                f"{', '.join(foreign)}",
                foreign,
            )
        if missing:
            total = len(self.objects())
            state = State.MISSING if len(missing) == total else State.PROGRESSING
            return PhaseStatus(state, f"missing: {', '.join(missing)}", missing)
        if drifted:
            return PhaseStatus(
                State.PROGRESSING, f"differs from the plan: {', '.join(drifted)}", drifted
            )
        return self.health()

    # -- rollback

    def keep_reason(self, ref: ObjectRef) -> str:
        """Why rollback keeps an object of ours (package data); empty when it deletes it."""
        return ""

    def was_applied(self) -> bool:
        """Whether any object of the phase exists: a rollback of a phase that never ran skips it
        (and asks for none of its passwords). True when there is no cluster to ask."""
        kube = self.ctx.kube
        if kube is None:
            return True
        return any(kube.get(ref_of(obj)) is not None for obj in self.objects())

    def rollback_preview(self) -> RollbackPreview:
        """What :meth:`rollback` would delete and keep, read from the cluster; nothing written."""
        preview = RollbackPreview()
        kube = self.ctx.kube
        for obj in reversed(self.objects()):
            ref = ref_of(obj)
            live = kube.get(ref) if kube is not None else {}
            if live is None:
                continue
            reason = self.keep_reason(ref)
            if kube is not None and not is_ours(live):
                preview.keeps.append((str(ref), "not made by thinkube-devpi"))
            elif kube is not None and is_adopted(live):
                preview.keeps.append((str(ref), "adopted: it existed before the install"))
            elif reason:
                preview.keeps.append((str(ref), reason))
            else:
                preview.deletes.append(str(ref) if kube is not None else f"{ref} (if present)")
        return preview

    def rollback(self, emit: Emit) -> None:
        self.delete_objects(reversed(self.objects()), emit, keep=self.keep_reason)

    def delete_objects(
        self, objs: Iterable[Desired], emit: Emit, *, keep: Callable[[ObjectRef], str] | None = None
    ) -> None:
        kube = self.ctx.require_kube()
        for obj in objs:
            ref = ref_of(obj)
            reason = keep(ref) if keep else ""
            live = kube.get(ref)
            if live is None:
                emit(ObjectDeleted(self.name, ref, "absent"))
            elif not is_ours(live):
                emit(ObjectDeleted(self.name, ref, "kept", "not made by thinkube-devpi"))
            elif is_adopted(live):
                emit(
                    ObjectDeleted(self.name, ref, "kept", "adopted: it existed before the install")
                )
            elif reason:
                emit(ObjectDeleted(self.name, ref, "kept", reason))
            else:
                kube.delete(ref)
                emit(ObjectDeleted(self.name, ref, "deleted"))

    # -- helpers for subclasses

    def wait_for(
        self,
        emit: Emit,
        ref: ObjectRef,
        predicate: Callable[[dict[str, Any] | None], bool],
        what: str,
        timeout: float | None = None,
    ) -> dict[str, Any] | None:
        timeout = self.ctx.wait_timeout if timeout is None else timeout
        emit(WaitingFor(self.name, what, timeout))
        return self.ctx.require_kube().wait_until(
            ref, predicate, what=what, timeout=timeout, cancel=self.ctx.cancel
        )

    def log(
        self, emit: Emit, text: str, level: Literal["debug", "info", "warning", "error"] = "info"
    ) -> None:
        emit(LogLine(self.name, text, level))


__all__ = [
    "Context",
    "Deferred",
    "Derived",
    "Desired",
    "Generated",
    "KeySource",
    "KubeError",
    "Phase",
    "PhaseError",
    "PhaseStatus",
    "Plan",
    "PlanItem",
    "RollbackPreview",
    "SecretObject",
    "decode_secret_data",
    "diff_paths",
    "realize",
    "ref_of",
    "secret_changes",
]
