"""The phases view: every phase (then the runner's operations 88 and 89) with its state, the
selected row's plan and its log."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Static

from thinkube_devpi.installer.events import (
    Event,
    LogLine,
    ObjectApplied,
    ObjectDeleted,
    PhaseFinished,
    PhaseSkipped,
    PhaseStarted,
    State,
    WaitingFor,
)
from thinkube_devpi.installer.operations import Row
from thinkube_devpi.installer.phases.base import PhaseStatus, Plan, PlanItem
from thinkube_devpi.tui import wording
from thinkube_devpi.tui.colors import ACTION_STYLE, LEVEL_STYLE, STATE_STYLE, state_text

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
LOG_LINES = 500  # kept on screen per phase; the journal keeps everything
_STEP = re.compile(r"\.([^.\[]+)|\[([^\]]+)\]")


def value_at(obj: Any, path: str) -> Any:
    """The value at a diff path such as ``.spec.template.spec.containers[redis].image``."""
    for key, index in _STEP.findall(path):
        if key:
            obj = obj.get(key) if isinstance(obj, dict) else None
        elif isinstance(obj, list):
            match = next((x for x in obj if isinstance(x, dict) and x.get("name") == index), None)
            if match is None and index.isdigit() and int(index) < len(obj):
                match = obj[int(index)]
            obj = match
        else:
            obj = None
    return obj


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plan_renderable(plan: Plan | None, status: PhaseStatus | None, error: str = "") -> Group:
    """What the phase will do: each object, the action, and what changes (never secret values)."""
    parts: list[Any] = []
    if status is not None:
        head = Text("State: ")
        head.append_text(state_text(status.state))
        if status.reason:
            reason = status.reason
            if len(status.details) > 3 and reason.startswith("missing: "):
                reason = (
                    "missing: "
                    + ", ".join(status.details[:3])
                    + (f" and {len(status.details) - 3} more")
                )
            head.append(f"  {wording.text(reason)}", style="#d0d0d0")
        parts.append(head)
    if error:
        parts.append(Text(f"Plan unavailable: {error}", style="#ff5f5f"))
    if plan is None:
        parts.append(Text("reading the plan…", style="italic #8a8a8a"))
        return Group(*parts)
    for note in plan.notes:
        parts.append(Text(note, style="italic #8a8a8a"))
    if not plan.items:
        return Group(*parts)
    # two columns, the changes under their object: readable from 80 columns up (a third
    # column for the changes squeezed ACTION and OBJECT to a few letters there)
    table = Table(box=None, expand=True, padding=(0, 1), show_edge=False)
    table.add_column("ACTION", no_wrap=True, min_width=9)
    table.add_column("OBJECT / CHANGES", overflow="fold", ratio=1)
    for item in plan.items:
        cell = Text(str(item.ref))
        details = _details(item)
        if details.plain:
            cell.append("\n")
            cell.append_text(_indent(details))
        table.add_row(Text(item.action, style=ACTION_STYLE.get(item.action, "")), cell)
    parts.append(table)
    return Group(*parts)


def _indent(text: Text) -> Text:
    lines = text.split("\n")
    return Text("\n").join(Text("  ").append_text(line) for line in lines)


def _details(item: PlanItem) -> Text:
    out = Text()
    if item.secret_keys is not None:
        changed = {c.split(":")[0]: c.split(":", 1)[1].strip() for c in item.changes if ":" in c}
        for i, (key, source) in enumerate(item.secret_keys.items()):
            if i:
                out.append("\n")
            out.append(key, style="bold")
            out.append(f" ({source})", style="#8a8a8a")
            if item.action == "update" or key in changed:
                out.append(
                    f" {changed.get(key, 'unchanged')}",
                    style=ACTION_STYLE["update"] if key in changed else "#8a8a8a",
                )
        return out
    if item.action == "update":
        for i, path in enumerate(item.changes):
            if i:
                out.append("\n")
            out.append(path, style="#ffaf00")
            out.append(f" → {_short(value_at(item.manifest, path))}")
        return out
    if item.changes:
        out.append("; ".join(item.changes), style="#ff5f5f" if item.action == "refuse" else "")
    return out


def event_text(event: Event) -> Text | None:
    """One runner event as a log line, the way the CLI prints it."""
    if isinstance(event, PhaseStarted):
        return Text(f"▶ {event.action}: {event.title}", style="bold")
    if isinstance(event, PhaseSkipped):
        return Text(f"  skipped: {event.reason}", style="#8a8a8a")
    if isinstance(event, ObjectApplied):
        style = {"created": "#5fd75f", "changed": "#ffaf00", "adopted": "#af87ff"}.get(
            event.outcome, "#8a8a8a"
        )
        return Text.assemble(("  " + event.outcome.ljust(10), style), str(event.ref))
    if isinstance(event, ObjectDeleted):
        style = {"deleted": "#ff8700", "kept": "#87afd7"}.get(event.outcome, "#8a8a8a")
        line = Text.assemble(("  " + event.outcome.ljust(10), style), str(event.ref))
        if event.reason:
            line.append(f" ({event.reason})", style="#8a8a8a")
        return line
    if isinstance(event, WaitingFor):
        return Text(f"  waiting for {event.what} (up to {event.timeout:g}s)", style="#87afd7")
    if isinstance(event, LogLine):
        return Text(f"  {wording.text(event.text)}", style=LEVEL_STYLE.get(event.level, ""))
    if isinstance(event, PhaseFinished):
        if event.ok:
            message = wording.text(event.message)
            return Text(f"✔ {event.state.value}: {message}", style=STATE_STYLE[event.state])
        line = Text(f"✘ failed: {wording.text(event.message)}", style=STATE_STYLE[State.FAILED])
        if event.hint or event.setting:
            line.append(f"\n  → {wording.hint(event.hint, event.setting)}", style="#ffaf00")
        return line
    return None


class PhasesView(Horizontal):
    """Left: the phase list. Right: the selected phase's state and plan, then its log."""

    class Selected(Message):
        def __init__(self, phase: str) -> None:
            self.phase = phase
            super().__init__()

    def __init__(self, phases: Sequence[Row], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.phases = phases
        self.statuses: dict[str, PhaseStatus] = {}
        self.plans: dict[str, Plan | None] = {}
        self.plan_errors: dict[str, str] = {}
        self.logs: dict[str, list[Text]] = {p.name: [] for p in phases}
        self.running: str | None = None
        self.filter_text = ""
        self.waiting: tuple[str, str, float, float] | None = None  # phase, what, timeout, since
        self._wait_timer: Any = None

    def compose(self) -> ComposeResult:
        table: DataTable[Any] = DataTable(id="phase-table", cursor_type="row", zebra_stripes=False)
        table.border_title = "Phases"
        yield table
        with Vertical(id="phase-detail"):
            with VerticalScroll(id="plan-scroll") as scroll:
                scroll.border_title = "Plan"
                yield Static(id="plan")
            with VerticalScroll(id="phase-log") as log:
                log.border_title = "Log"
                yield Static(id="phase-log-text")

    def on_mount(self) -> None:
        table = self.query_one("#phase-table", DataTable)
        table.add_column("#", key="number", width=3)
        table.add_column("PHASE", key="name", width=12)
        table.add_column("STATE", key="state", width=11)
        self._fill()
        self._show_selected()

    def _fill(self) -> None:
        table = self.query_one("#phase-table", DataTable)
        table.clear()
        needle = self.filter_text.lower()
        for phase in self.phases:
            text = f"{phase.number} {phase.name} {phase.title}".lower()
            if needle and needle not in text:
                continue
            table.add_row(str(phase.number), phase.name, self._state_cell(phase), key=phase.name)
        table.border_title = f"Phases /{self.filter_text}" if self.filter_text else "Phases"

    def set_filter(self, text: str) -> None:
        """`/`: only the phases whose number, name or title hold ``text``."""
        selected = self.selected
        self.filter_text = text
        self._fill()
        table = self.query_one("#phase-table", DataTable)
        if selected is not None and selected in {str(k.value) for k in table.rows}:
            table.move_cursor(row=table.get_row_index(selected))
        self._show_selected()

    # -- model updates from the app

    def set_phases(self, phases: Sequence[Row]) -> None:
        self.phases = phases

    def _state_cell(self, phase: Row) -> Text:
        if self.running == phase.name:
            return state_text(State.PROGRESSING, "running…")
        status = self.statuses.get(phase.name)
        if status is None:
            return Text("…", style="#8a8a8a")
        return state_text(status.state)

    def _refresh_row(self, name: str) -> None:
        phase = next((p for p in self.phases if p.name == name), None)
        table = self.query_one("#phase-table", DataTable)
        if phase is None or name not in {str(k.value) for k in table.rows}:
            return
        self.query_one("#phase-table", DataTable).update_cell(
            name, "state", self._state_cell(phase)
        )

    def set_status(self, name: str, status: PhaseStatus) -> None:
        self.statuses[name] = status
        self._refresh_row(name)
        if name == self.selected:
            self._show_plan()

    def set_plan(self, name: str, plan: Plan | None, error: str = "") -> None:
        self.plans[name] = plan
        self.plan_errors[name] = error
        if name == self.selected:
            self._show_plan()

    def set_running(self, name: str | None) -> None:
        before, self.running = self.running, name
        for n in {before, name} - {None}:
            self._refresh_row(n)  # type: ignore[arg-type]

    def add_event(self, event: Event) -> None:
        if isinstance(event, WaitingFor):
            self.waiting = (event.phase, event.what, event.timeout, time.monotonic())
            if self._wait_timer is None:
                self._wait_timer = self.set_interval(0.25, self._tick_wait)
        elif self.waiting is not None and self.waiting[0] == event.phase:
            self.waiting = None
        line = event_text(event)
        if line is None:
            return
        self.add_log(event.phase, line)
        if isinstance(event, PhaseStarted):
            self.set_running(event.phase)
        elif isinstance(event, PhaseFinished):
            self.set_running(None)
            self.set_status(
                event.phase,
                PhaseStatus(event.state, event.message if event.ok else f"{event.message}"),
            )

    def add_log(self, phase: str, line: Text) -> None:
        self.logs.setdefault(phase, []).append(line)
        if phase == self.selected:
            self._show_log()

    # -- selection

    @property
    def selected(self) -> str | None:
        table = self.query_one("#phase-table", DataTable)
        if not table.row_count:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return str(row_key.value)

    def select(self, name: str) -> None:
        table = self.query_one("#phase-table", DataTable)
        if name not in {str(k.value) for k in table.rows}:
            self.set_filter("")
        table.move_cursor(row=table.get_row_index(name))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_selected()
        self.post_message(self.Selected(str(event.row_key.value)))

    def _show_selected(self) -> None:
        self._show_plan()
        self._show_log()

    def wait_line(self) -> Text | None:
        """The wait in progress: a spinner, and the time spent against its deadline."""
        if self.waiting is None:
            return None
        _, what, timeout, since = self.waiting
        elapsed = time.monotonic() - since
        frame = SPINNER[int(elapsed * 4) % len(SPINNER)]
        return Text(
            f"  {frame} waiting for {what}: {elapsed:.0f} s of {timeout:g} s", style="#ffaf00"
        )

    def _tick_wait(self) -> None:
        if self.waiting is None:
            if self._wait_timer is not None:
                self._wait_timer.stop()
                self._wait_timer = None
            self._show_log()
            return
        if self.waiting[0] == self.selected:
            self._show_log()

    def _show_log(self) -> None:
        # a phase's log is short (one line per object and wait): render it whole
        lines = list(self.logs.get(self.selected or "", [])[-LOG_LINES:])
        live = self.wait_line() if self.waiting and self.waiting[0] == self.selected else None
        if live is not None:
            lines.append(live)
        self.query_one("#phase-log-text", Static).update(Text("\n").join(lines))
        scroll = self.query_one("#phase-log", VerticalScroll)
        scroll.call_after_refresh(scroll.scroll_end, animate=False)

    def _show_plan(self) -> None:
        name = self.selected
        phase = next((p for p in self.phases if p.name == name), None)
        scroll = self.query_one("#plan-scroll", VerticalScroll)
        static = self.query_one("#plan", Static)
        if phase is None:
            static.update("")
            return
        scroll.border_title = f"Plan: {phase.number} {phase.name}: {phase.title}"
        body = plan_renderable(
            self.plans.get(phase.name),
            self.statuses.get(phase.name),
            self.plan_errors.get(phase.name, ""),
        )
        if phase.summary:
            body = Group(Text(phase.summary, style="#d0d0d0"), body)
        static.update(body)
        self.query_one("#phase-log", VerticalScroll).border_title = f"Log: {phase.name}"
