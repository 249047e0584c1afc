"""Messages that cross the app: worker results and the runner's events.

Workers post these from their threads (``post_message`` is thread-safe); the app and its views
render them. Status messages define ``can_replace`` so that a newer snapshot replaces an older one
still in the queue: a busy UI never renders stale state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from thinkube_devpi.installer.events import Event
    from thinkube_devpi.installer.live.rows import ClusterSnapshot
    from thinkube_devpi.installer.phases.base import PhaseStatus, Plan
    from thinkube_devpi.installer.preflight import Check


@dataclass
class Connected(Message):
    """The cluster answered; the app's session takes over this session's connection."""

    session: Any
    version: str
    attempt: int = 0  # which connection attempt: a late answer to an older one is dropped


@dataclass
class Unreachable(Message):
    """Plan mode: no kubeconfig, no answer, or ``--plan``. ``reason`` goes in the header."""

    reason: str
    hint: str = ""
    attempt: int = 0


@dataclass
class PhaseStatusRead(Message):
    """One phase's health, read from the cluster."""

    phase: str
    status: PhaseStatus

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, PhaseStatusRead) and message.phase == self.phase


@dataclass
class PlanRead(Message):
    phase: str
    plan: Plan | None
    error: str = ""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, PlanRead) and message.phase == self.phase


@dataclass
class RunnerEvent(Message):
    """One event of the runner's stream (the same events the CLI prints)."""

    event: Event


@dataclass
class RunFinished(Message):
    action: str  # "apply" or "rollback"
    ok: bool
    error: str = ""
    hint: str = ""


@dataclass
class ClusterStatus(Message):
    snapshot: ClusterSnapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ClusterStatus)


@dataclass
class PodLogLines(Message):
    pod: str
    lines: list[str]
    ended: str = ""  # why the stream ended, when it did


@dataclass
class PreflightDone(Message):
    checks: list[Check]


@dataclass
class SecretKept(Message):
    """A secret typed in the config view is now held somewhere: says where, never the value."""

    name: str
    where: str
    ok: bool = True


@dataclass
class RollbackPreviewRead(Message):
    """What a rollback of ``phase`` would delete and keep, as lines; ``with_data`` is the same
    when the package data is deleted too (None when the rollback does not touch it)."""

    phase: str
    listing: list[str]
    with_data: list[str] | None = None


@dataclass
class Trying(Message):
    """The kubeconfig is read: the connection attempt now asks ``server`` (of ``cluster``, in
    ``context``) for its version."""

    attempt: int
    server: str
    context: str = ""
    cluster: str = ""


@dataclass
class ProbeAnswered(Message):
    """The periodic liveness probe (GET /version) came back; ``error`` when it failed."""

    error: str = ""
