"""The cluster view: the live objects of the install as the watcher reads them, and pod logs.

Built the first time it is shown (the first screen paints sooner without its ~40 widgets); it
then shows at once the snapshot the App already holds.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult

from thinkube_devpi.errors import Error
from thinkube_devpi.installer.runner import describe_error
from thinkube_devpi.tui.commands import view_bindings
from thinkube_devpi.tui.messages import PodLogLines
from thinkube_devpi.tui.screens.base import ViewScreen

if TYPE_CHECKING:
    from thinkube_devpi.installer.live.rows import ClusterSnapshot
    from thinkube_devpi.tui.widgets.cluster import ClusterView

AGE_SECONDS = 5.0  # how often the ages are re-rendered without an API change


class ClusterScreen(ViewScreen):
    """Kinds with counts, the chosen kind's table, events or the selected pod's log."""

    VIEW = "cluster"
    BINDINGS = view_bindings(VIEW)
    HELP_EXTRA: ClassVar[list[tuple[str, str]]] = [
        ("tab", "Move between the kinds list and the tables")
    ]

    def __init__(self) -> None:
        super().__init__()
        self.log_cancel = threading.Event()
        self._message = ""

    def compose_view(self) -> ComposeResult:
        from thinkube_devpi.tui.widgets.cluster import ClusterView

        view = ClusterView(id="cluster-view")
        view.clock = self.state.clock
        view.message = self._message = self.state.cluster_message
        view.snapshot = self.state.snapshot
        yield view

    @property
    def cluster_view(self) -> ClusterView:
        from thinkube_devpi.tui.widgets.cluster import ClusterView

        return self.query_one(ClusterView)

    def on_mount(self) -> None:
        self.state.snapshot_read.subscribe(self, self._snapshot_read)
        self.state.leaving.subscribe(self, lambda _: self.log_cancel.set())
        self.set_interval(AGE_SECONDS, self._tick)

    def on_unmount(self) -> None:
        self.log_cancel.set()

    def sync_header(self, _: object = None) -> None:
        super().sync_header()
        # why there is nothing to show (plan mode, unreachable, stale)
        if self.state.cluster_message != self._message:
            self._message = self.state.cluster_message
            self.cluster_view.show_message(self._message)

    def _snapshot_read(self, snapshot: ClusterSnapshot) -> None:
        self.cluster_view.update_snapshot(snapshot)

    def _tick(self) -> None:
        if self.app.current_mode == self.VIEW and self.state.snapshot is not None:
            self.cluster_view.tick()

    def shown(self) -> None:
        self.cluster_view.render_snapshot(new_ages=True)
        super().shown()

    def focus_view(self) -> None:
        self.cluster_view.focus_table()

    @property
    def filter_text(self) -> str:
        return self.cluster_view.filter_text

    def set_filter(self, text: str) -> None:
        self.cluster_view.set_filter(text)

    def show_kind(self, kind: str) -> None:
        """`:pods`, `:pvc` …: that kind's table, with the cursor on it in the kinds list."""
        view = self.cluster_view
        view.show_kind(kind)
        kinds_table: Any = view.query_one("#kinds")
        kinds_table.move_cursor(row=kinds_table.get_row_index(kind))
        view.focus_table()

    def show_events(self) -> None:
        """`:events`: the events table, focused."""
        self.cluster_view.show_events()
        self.set_focus(self.cluster_view.query_one("#events"))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "pod_log":
            return True if not self.state.plan_mode else None
        return True

    # -- keys

    def action_toggle_faults(self) -> None:
        self.cluster_view.toggle_faults()

    def action_show_events(self) -> None:
        self.log_cancel.set()
        self.cluster_view.show_events()

    def action_pod_log(self) -> None:
        pod = self.cluster_view.selected_pod()
        if pod is None or self.state.plan_mode:
            self.notify("Select a pod in the pods table first.", severity="warning")
            return
        self.log_cancel.set()
        self.log_cancel = threading.Event()
        namespace, name = pod
        self.cluster_view.start_log(name)
        self.follow_log(namespace, name, self.log_cancel)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="pod-log",
        description="Following a pod's log",
    )
    def follow_log(self, namespace: str, name: str, cancel: threading.Event) -> None:
        session = self.state.session
        try:
            for line in session.pod_log(namespace, name, tail_lines=1000, cancel=cancel):
                self.post_message(PodLogLines(name, [line]))
        except Error as exc:
            message, _ = describe_error(exc)
            self.post_message(PodLogLines(name, [], ended=message))
            return
        if not cancel.is_set():
            self.post_message(PodLogLines(name, [], ended="(log ended)"))

    @on(PodLogLines)
    def _pod_log_lines(self, message: PodLogLines) -> None:
        if not self.closing:
            self.cluster_view.add_log_lines(message.pod, message.lines, message.ended)
