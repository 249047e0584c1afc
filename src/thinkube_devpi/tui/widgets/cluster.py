"""The cluster view: live tables by kind, coloured by status as k9s does, events and pod logs.

Tables are synced row by row (update the cells that changed, add and remove rows), so a snapshot
with 500 pods where one changed costs one row's work, not a rebuild.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import ContentSwitcher, DataTable, RichLog

from thinkube_devpi.installer.live.rows import (
    ClusterSnapshot,
    Health,
    Row,
    Table,
    age,
)
from thinkube_devpi.tui.colors import HEALTH_STYLE

# the order k9s users expect: workloads first, then storage and network, then the build
KINDS: tuple[tuple[str, str], ...] = (
    ("Pod", "pods"),
    ("Deployment", "deploy"),
    ("PersistentVolumeClaim", "pvc"),
    ("Service", "svc"),
    ("Ingress", "ing"),
    ("HTTPRoute", "httproute"),
    ("Job", "jobs"),
    ("Workflow", "workflows"),
    ("Application", "apps"),
)
# `:name` for a kind: its short name, its own name, and the k9s aliases
KIND_ALIASES: dict[str, str] = {
    **{short: kind for kind, short in KINDS},
    **{kind.lower(): kind for kind, _ in KINDS},
    "po": "Pod", "deployments": "Deployment", "pvcs": "PersistentVolumeClaim",
    "services": "Service", "ingresses": "Ingress", "job": "Job", "wf": "Workflow",
    "applications": "Application", "app": "Application",
}


def table_id(kind: str) -> str:
    return f"table-{kind}"


def _styled(health: Health, cells: tuple[str, ...]) -> list[Text]:
    style = HEALTH_STYLE[health]
    return [Text(c, style=style) for c in cells]


class StatusTable(DataTable[Any]):
    """A DataTable that shows :class:`Table` rows and syncs them in place."""

    def __init__(self, kind: str, *, with_name: bool = True, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.kind = kind
        self.with_name = with_name  # events have generated names nobody wants to read
        self._cells: dict[str, tuple[Health, tuple[str, ...]]] = {}
        self._columns: tuple[str, ...] = ()
        self._shown: tuple[Any, ...] | None = None  # (rows, now, filter) last synced

    def sync(
        self,
        table: Table,
        now: float,
        keep: Callable[[Row], bool] | None = None,
        keep_key: object = None,
    ) -> None:
        """Show ``table``'s rows (those ``keep`` accepts; ``keep_key`` names that choice),
        touching only what changed."""
        shown = (table.rows, now, keep is None, keep_key)
        if (
            self._shown is not None
            and self._shown[1:] == shown[1:]
            and (self._shown[0] is table.rows or self._shown[0] == table.rows)
        ):
            return  # nothing changed: not even a repaint
        self._shown = shown
        show_ns = "," in table.namespace
        name = ("NAME",) if self.with_name else ()
        columns = (*name, *(("NAMESPACE",) if show_ns else ()), *table.columns, "AGE")
        if columns != self._columns:
            self.clear(columns=True)
            self._cells = {}
            for c in columns:
                self.add_column(c, key=c)
            self._columns = columns
        rows = [r for r in table.rows if keep is None or keep(r)]
        # compare plain strings and health: rich's Text equality ignores the style
        wanted: dict[str, tuple[Health, tuple[str, ...]]] = {
            r.key: (
                r.health,
                (
                    *((r.name,) if self.with_name else ()),
                    *((r.namespace,) if show_ns else ()),
                    *r.cells,
                    age(r.created, now),
                ),
            )
            for r in rows
        }
        if list(wanted) != list(self._cells):
            # rows came or went: rebuild in the snapshot's order, keeping the cursor's row
            selected = self.selected_key
            self.clear()
            for key, (health, cells) in wanted.items():
                self.add_row(*_styled(health, cells), key=key)
            self._cells = wanted
            if selected in wanted:
                self.move_cursor(row=self.get_row_index(selected), animate=False)
            return
        for key, (health, cells) in wanted.items():
            old_health, old = self._cells[key]
            if old_health is not health:
                for col, text in zip(columns, _styled(health, cells), strict=True):
                    self.update_cell(key, col, text)
            elif old != cells:
                for col, a, b in zip(columns, old, cells, strict=True):
                    if a != b:
                        self.update_cell(key, col, Text(b, style=HEALTH_STYLE[health]))
        self._cells = wanted

    def forget(self) -> None:
        """Drop every row (the next sync renders from scratch)."""
        self.clear()
        self._cells = {}
        self._shown = None

    @property
    def selected_key(self) -> str | None:
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return str(row_key.value)


class ClusterView(Horizontal):
    """Left: kinds with counts (faults in red). Right: the chosen kind's table; below, events or
    the selected pod's log."""

    DEFAULT_CSS = """
    ClusterView { height: 1fr; }
    #kinds {
        width: 22;
        height: 1fr;
        border: round $primary;
    }
    #cluster-main { width: 1fr; height: 1fr; }
    #kind-switcher { height: 3fr; }
    #kind-switcher > StatusTable { height: 1fr; border: round $primary-darken-1; }
    #bottom-switcher { height: 2fr; }
    #events, #pod-log { height: 1fr; border: round $primary-darken-1; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.snapshot: ClusterSnapshot | None = None
        self.faults_only = False
        self.kind = "Pod"
        self.clock: Callable[[], float] = time.time
        self.log_pod: str | None = None
        self.message = "waiting for the cluster…"
        self.age_now: float | None = None  # ages are re-rendered on the tick, not per update
        self._kind_cells: dict[tuple[str, str], tuple[str, str]] = {}
        self.filter_text = ""  # `/`: rows whose name or cells hold it

    def compose(self) -> ComposeResult:
        kinds: DataTable[Any] = DataTable(id="kinds", cursor_type="row")
        kinds.border_title = "Kinds"
        yield kinds
        with Vertical(id="cluster-main"):
            with ContentSwitcher(initial=table_id("Pod"), id="kind-switcher"):
                for kind, _ in KINDS:
                    table = StatusTable(kind, id=table_id(kind))
                    table.border_title = f"{kind}"
                    yield table
            with ContentSwitcher(initial="events", id="bottom-switcher"):
                events = StatusTable("Event", id="events", with_name=False)
                events.border_title = "Events"
                yield events
                pod_log = RichLog(id="pod-log", wrap=False, markup=False, max_lines=5000)
                pod_log.border_title = "Log"
                yield pod_log

    def on_mount(self) -> None:
        kinds = self.query_one("#kinds", DataTable)
        kinds.add_column("KIND", key="kind", width=9)
        kinds.add_column("#", key="count", width=3)
        kinds.add_column("!", key="faults", width=2)
        for kind, short in KINDS:
            kinds.add_row(short, "-", "", key=kind)
        self.show_message(self.message)
        self.render_snapshot()

    # -- data

    def show_message(self, text: str) -> None:
        """Why there is nothing to show (plan mode, unreachable)."""
        self.message = text
        if not self.is_mounted:
            return
        for kind, _ in KINDS:
            self.query_one(f"#{table_id(kind)}", StatusTable).border_subtitle = text

    def update_snapshot(self, snapshot: ClusterSnapshot) -> None:
        self.snapshot = snapshot
        self.render_snapshot()

    def render_snapshot(self, *, new_ages: bool = False) -> None:
        snap = self.snapshot
        if snap is None or not self.is_mounted:
            return
        if new_ages or self.age_now is None:
            self.age_now = self.clock()
        now = self.age_now
        needle = self.filter_text.lower()

        def matches(r: Row) -> bool:
            if self.faults_only and not r.health.is_fault:
                return False
            return not needle or any(needle in str(c).lower() for c in (r.name, *r.cells))

        keep = matches if (self.faults_only or needle) else None
        keep_key = (self.faults_only, needle)
        kinds = self.query_one("#kinds", DataTable)
        for kind, short in KINDS:
            try:
                table = snap.table(kind)
            except KeyError:
                continue
            widget = self.query_one(f"#{table_id(kind)}", StatusTable)
            widget.sync(table, now, keep, keep_key)
            shown = widget.row_count
            title = f"{kind}({table.namespace})[{shown}]"
            title += " faults only" if self.faults_only else ""
            title += f" /{self.filter_text}" if self.filter_text else ""
            if widget.border_title != title:
                widget.border_title = title
            if widget.border_subtitle != table.error:
                widget.border_subtitle = table.error
            faults = sum(1 for r in table.rows if r.health is Health.FAULT)
            pending = sum(1 for r in table.rows if r.health is Health.PENDING)
            label_style = (
                HEALTH_STYLE[Health.FAULT]
                if faults
                else HEALTH_STYLE[Health.PENDING]
                if pending
                else ("#8a8a8a" if table.error else "")
            )
            self._kind_cell(kinds, kind, "kind", short, label_style)
            self._kind_cell(kinds, kind, "count", str(len(table.rows)), label_style)
            self._kind_cell(
                kinds, kind, "faults", str(faults) if faults else "", HEALTH_STYLE[Health.FAULT]
            )
        events = self.query_one("#events", StatusTable)
        events.sync(snap.events, now, keep, keep_key)
        title = f"Events({snap.events.namespace})[{events.row_count}]"
        if events.border_title != title:
            events.border_title = title
        if events.border_subtitle != snap.events.error:
            events.border_subtitle = snap.events.error

    def _kind_cell(
        self, kinds: DataTable[Any], kind: str, column: str, text: str, style: str
    ) -> None:
        if self._kind_cells.get((kind, column)) != (text, style):
            self._kind_cells[(kind, column)] = (text, style)
            kinds.update_cell(kind, column, Text(text, style=style))

    def tick(self) -> None:
        """Re-render ages; cheap because only changed cells are touched."""
        self.render_snapshot(new_ages=True)

    # -- interaction

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "kinds":
            event.stop()
            self.show_kind(str(event.row_key.value))

    def show_kind(self, kind: str) -> None:
        self.kind = kind
        self.query_one("#kind-switcher", ContentSwitcher).current = table_id(kind)

    def focus_table(self) -> None:
        self.screen.set_focus(self.query_one(f"#{table_id(self.kind)}", StatusTable))

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        self.render_snapshot()

    def toggle_faults(self) -> None:
        self.faults_only = not self.faults_only
        self.render_snapshot()

    def selected_pod(self) -> tuple[str, str] | None:
        """(namespace, name) of the pod under the cursor in the pods table."""
        table = self.query_one(f"#{table_id('Pod')}", StatusTable)
        key = table.selected_key
        if key is None or self.snapshot is None:
            return None
        for row in self.snapshot.table("Pod").rows:
            if row.key == key:
                return row.namespace, row.name
        return None

    def start_log(self, pod: str) -> None:
        self.log_pod = pod
        log = self.query_one("#pod-log", RichLog)
        log.clear()
        log.write(Text(f"following the log of {pod} (last 1000 lines)…", style="italic #8a8a8a"))
        log.border_title = f"Log: {pod}  (e: events)"
        self.query_one("#bottom-switcher", ContentSwitcher).current = "pod-log"

    def add_log_lines(self, pod: str, lines: list[str], ended: str = "") -> None:
        if pod != self.log_pod or not self.is_mounted:
            return
        log = self.query_one("#pod-log", RichLog)
        for line in lines:
            log.write(Text(line))
        if ended:
            log.write(Text(ended, style="italic #8a8a8a"))

    def show_events(self) -> None:
        self.log_pod = None
        self.query_one("#bottom-switcher", ContentSwitcher).current = "events"
