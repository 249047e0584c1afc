"""What the views share: the session, the connection as the header shows it, the live snapshot and
the run in progress, with channels that tell the views when one of them changed.

The App writes the connection and the snapshot, the phases view the run in progress, the config
view the settings; each view reads what it shows and subscribes to what it must follow. A view
reaches this object through :class:`ViewHost`, never through the App class.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from thinkube_devpi.installer.session import Session

if TYPE_CHECKING:
    from textual.message_pump import MessagePump

    from thinkube_devpi.config import Settings
    from thinkube_devpi.installer.live.rows import ClusterSnapshot
    from thinkube_devpi.installer.operations import Row
    from thinkube_devpi.installer.phases.base import Context, Phase

T = TypeVar("T")


class Channel(Generic[T]):
    """Publish to the views that subscribed, at once and in order.

    Textual's ``Signal`` publishes nothing before the App has finished mounting, and the App
    enters plan mode in ``on_mount`` (before the first paint): hence this small one. A view that
    left the DOM (the app is closing) is dropped, so a late worker result reaches nobody; the
    App itself (the DOM's root) stays subscribed.
    """

    def __init__(self) -> None:
        self._subscribers: list[tuple[MessagePump, Callable[[T], object]]] = []

    def subscribe(self, node: MessagePump, callback: Callable[[T], object]) -> None:
        self._subscribers.append((node, callback))

    def publish(self, data: T) -> None:
        for node, callback in list(self._subscribers):
            if node.is_attached or node.is_dom_root:
                callback(data)
            else:
                self._subscribers.remove((node, callback))


@dataclass
class HeaderInfo:
    """Where the session points and why it is in the state it is in (the header's left side)."""

    context: str = "-"
    cluster: str = "-"
    namespace: str = "devpi"
    reason: str = ""
    since: str = ""
    version: str = ""
    domain_note: str = ""

    def items(self) -> list[tuple[str, Any]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self)]


def domain_note(settings: Settings) -> str:
    if settings.is_placeholder:
        return f"{settings.effective_domain} (placeholder: set domain in Config to apply)"
    return settings.effective_domain


class TuiState:
    """The one object every view reads; see the module's docstring for who writes what."""

    def __init__(
        self,
        settings: Settings,
        *,
        plan: bool = False,
        config_path: Path | None = None,
        config_note: str = "",
        journal_dir: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.session = Session(settings, why="plan mode requested" if plan else "connecting")
        # the rows shown: the phases, then the runner's operations 88 test and 89 rollback
        self.phase_list: list[Row] = self.session.rows
        self.force_plan = plan
        self.config_path = config_path
        self.config_note = config_note
        self.journal_dir = journal_dir
        self.clock = clock
        self.connection = "plan mode" if plan else "connecting"
        self.header = HeaderInfo(namespace=settings.namespace, domain_note=domain_note(settings))
        self.snapshot: ClusterSnapshot | None = None
        self.cluster_message = "waiting for the cluster…"
        self.running: str | None = None  # "apply" / "rollback" while the runner works
        self.running_phase: str | None = None
        self.failed: set[str] = set()
        # a failed phase's one fix, when it is a run option the question can offer (adopt, ...)
        self.fixes: dict[str, str] = {}
        # connection, header, cluster message or the run changed: headers, hints, keys redraw
        self.changed: Channel[None] = Channel()
        self.snapshot_read: Channel[ClusterSnapshot] = Channel()
        self.phases_due: Channel[bool] = Channel()  # read phase states again (True: plans too)
        self.plan_mode_entered: Channel[tuple[str, str]] = Channel()  # (reason, hint)
        self.settings_changed: Channel[Settings] = Channel()
        self.leaving: Channel[None] = Channel()  # close streams now: the app quits

    @property
    def ctx(self) -> Context:
        return self.session.context

    @property
    def plan_mode(self) -> bool:
        return self.session.plan_mode

    @property
    def install_phases(self) -> list[Phase]:
        """The phases among the rows: what the runner is given (88 and 89 are its own)."""
        from thinkube_devpi.installer.phases.base import Phase

        return [p for p in self.phase_list if isinstance(p, Phase)]

    def show(self, connection: str | None = None, **header: str) -> None:
        """Set the connection state and header fields, and tell the views."""
        if connection is not None:
            self.connection = connection
        for name, value in header.items():
            setattr(self.header, name, value)
        self.changed.publish(None)

    def show_cluster_message(self, text: str) -> None:
        self.cluster_message = text
        self.changed.publish(None)

    def refresh_phases(self, plans: bool = True) -> None:
        self.phases_due.publish(plans)

    def use_settings(self, settings: Settings) -> None:
        """Saved settings from now on: the phases are built again for them."""
        from thinkube_devpi.installer.operations import rows
        from thinkube_devpi.installer.phases import build

        self.settings = settings
        self.ctx.settings = settings
        self.phase_list = rows(build(self.ctx))
        self.header.namespace = settings.namespace
        self.header.domain_note = domain_note(settings)
        self.settings_changed.publish(settings)
        self.changed.publish(None)


class ViewHost(Protocol):
    """What a view needs of the app: the shared state, and the two moves between views."""

    state: TuiState

    async def go_to(self, target: str) -> None: ...

    async def go_back(self) -> None: ...
