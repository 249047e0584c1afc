"""The runner's event stream: the CLI and the TUI are two renderers of these."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from thinkube_devpi.installer.preflight import Check


class State(StrEnum):
    """A phase's health, read from the cluster (or the local machine) every time."""

    HEALTHY = "healthy"
    PROGRESSING = "progressing"
    MISSING = "missing"
    FAILED = "failed"
    UNKNOWN = "unknown"  # no cluster to ask (plan mode)


@dataclass(frozen=True)
class ObjectRef:
    """Names one Kubernetes object, as Kubernetes names it."""

    api_version: str
    kind: str
    name: str
    namespace: str | None = None

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"

    @classmethod
    def of(cls, obj: dict) -> ObjectRef:
        meta = obj.get("metadata", {})
        return cls(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))


@dataclass(frozen=True)
class Event:
    phase: str
    at: float = field(default_factory=time.time, compare=False, kw_only=True)


@dataclass(frozen=True)
class PhaseStarted(Event):
    action: Literal["apply", "rollback", "status", "test"]
    title: str


@dataclass(frozen=True)
class PhaseSkipped(Event):
    reason: str


ApplyOutcome = Literal["created", "changed", "unchanged", "adopted", "would create", "would change"]
DeleteOutcome = Literal["deleted", "absent", "kept"]


@dataclass(frozen=True)
class ObjectApplied(Event):
    ref: ObjectRef
    outcome: ApplyOutcome


@dataclass(frozen=True)
class ObjectDeleted(Event):
    ref: ObjectRef
    outcome: DeleteOutcome
    reason: str = ""


@dataclass(frozen=True)
class LogLine(Event):
    text: str
    level: Literal["debug", "info", "warning", "error"] = "info"


@dataclass(frozen=True)
class CheckDone(LogLine):
    """A check's result as a log line (its plain-text row); faces that know checks show ``check``
    the way they show preflight's."""

    check: Check = field(kw_only=True)

    @classmethod
    def of(cls, phase: str, check: Check) -> CheckDone:
        return cls(phase, check.line, "error" if check.ok is False else "info", check=check)


@dataclass(frozen=True)
class WaitingFor(Event):
    what: str
    timeout: float


@dataclass(frozen=True)
class PhaseFinished(Event):
    ok: bool
    state: State
    message: str = ""
    hint: str = ""
    setting: str = ""  # the setting or secret that fixes a failure (errors.Error.setting)


Emit = Callable[[Event], None]


def discard(_: Event) -> None:
    """An emitter for callers that do not watch progress."""
