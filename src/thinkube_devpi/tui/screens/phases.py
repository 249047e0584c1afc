"""The phases view: every phase's state and plan, and running or rolling back phases.

Its workers read phase states and plans, read what a rollback would delete, and run the runner;
nothing changes the cluster before the admin answers the question that lists what changes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.worker import Worker, WorkerState

from thinkube_devpi.installer.events import PhaseFinished, PhaseStarted
from thinkube_devpi.installer.operations import Operation, Row
from thinkube_devpi.installer.runner import Journal, Runner, describe_error, rollback_listing
from thinkube_devpi.tui import wording
from thinkube_devpi.tui.commands import view_bindings
from thinkube_devpi.tui.messages import (
    PhaseStatusRead,
    PlanRead,
    RollbackPreviewRead,
    RunFinished,
    RunnerEvent,
)
from thinkube_devpi.tui.screens.base import ViewScreen, describe
from thinkube_devpi.tui.widgets.phases import PhasesView

if TYPE_CHECKING:
    from thinkube_devpi.config import Settings
    from thinkube_devpi.installer.events import Event
    from thinkube_devpi.installer.live.rows import ClusterSnapshot
    from thinkube_devpi.tui.screens.confirm import RollbackChoice

PHASE_REFRESH_DELAY = 1.0  # s: after a cluster change, re-read phase states at most this often
# what writes to the cluster: disabled in plan mode and while a run is in progress
WRITES = ("run_phase", "run_all", "rollback_phase", "run_phase_named", "rollback_phase_named")


class PhasesScreen(ViewScreen):
    """Phases with their state, the selected one's plan and log; run, retry, roll back."""

    VIEW = "phases"
    BINDINGS = view_bindings(VIEW)
    HELP_EXTRA: ClassVar[list[tuple[str, str]]] = [
        ("enter", "Select the phase under the cursor (its plan and log)")
    ]

    def __init__(self) -> None:
        super().__init__()
        self._plans_due: set[str] = set()  # phases whose plan must be read (again)
        self._seen_status: dict[str, tuple[Any, str]] = {}  # state the last plan was read for
        self._refresh_timer: Any = None

    def compose_view(self) -> ComposeResult:
        yield PhasesView(self.state.phase_list, id="phases-view")

    @property
    def phases_view(self) -> PhasesView:
        return self.query_one(PhasesView)

    def on_mount(self) -> None:
        state = self.state
        state.phases_due.subscribe(self, self.refresh_phases)
        state.plan_mode_entered.subscribe(self, self._plan_mode_entered)
        state.snapshot_read.subscribe(self, self._snapshot_read)
        state.settings_changed.subscribe(self, self._settings_changed)

    def focus_view(self) -> None:
        self.set_focus(self.phases_view.query_one("#phase-table"))

    @property
    def filter_text(self) -> str:
        return self.phases_view.filter_text

    def set_filter(self, text: str) -> None:
        self.phases_view.set_filter(text)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        state = self.state
        if action in WRITES:
            return None if (state.plan_mode or state.running) else True
        if action == "retry_failed":
            return True if (state.failed and not state.running and not state.plan_mode) else None
        return True

    # -- what the rest of the app tells this view

    def _plan_mode_entered(self, why: tuple[str, str]) -> None:
        reason, hint = why
        for phase in self.state.phase_list:
            self.phases_view.add_log(phase.name, Text(f"plan mode: {reason}", style="#87afd7"))
            if hint:
                self.phases_view.add_log(phase.name, Text(f"  → {hint}", style="#8a8a8a"))

    def _snapshot_read(self, _: ClusterSnapshot) -> None:
        # the cluster moved: the phases' states may have too (not while the runner reports)
        if self.state.running is None and self._refresh_timer is None:
            self._refresh_timer = self.set_timer(PHASE_REFRESH_DELAY, self._delayed_refresh)

    def _delayed_refresh(self) -> None:
        self._refresh_timer = None
        if self.state.running is None:
            self.refresh_phases(plans=False)

    def _settings_changed(self, _: Settings) -> None:
        self.phases_view.set_phases(self.state.phase_list)
        self.refresh_phases()

    # -- phase states and plans

    def refresh_phases(self, plans: bool = True) -> None:
        """Read every phase's state again; with ``plans``, every plan too. A phase whose state
        changed has its plan read again as well, right after its state: the plan shown is
        always the plan for the state shown. A read cut short by a newer one leaves its
        unread plans due, so a cluster change never loses the first plan read."""
        if plans:
            self._plans_due.update(p.name for p in self.state.phase_list)
        self._read_phases()

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="phase-status",
        description="Reading phase states and plans",
    )
    def _read_phases(self) -> None:
        from textual.worker import get_current_worker

        worker = get_current_worker()
        phases = self.state.phase_list
        runner = Runner(self.state.ctx, phases=self.state.install_phases)
        due = set(self._plans_due)
        for phase in phases:
            if worker.is_cancelled:
                return
            ((_, status),) = runner.status([phase.name])
            self.post_message(PhaseStatusRead(phase.name, status))
            seen = self._seen_status.get(phase.name)
            if phase.name not in due and seen == (status.state, status.reason):
                continue
            self._seen_status[phase.name] = (status.state, status.reason)
            try:
                (plan,) = runner.plan([phase.name])
            except Exception as exc:
                message, _ = describe_error(exc)
                self.post_message(PlanRead(phase.name, None, message))
                continue
            self.post_message(PlanRead(phase.name, plan))

    @on(PhaseStatusRead)
    def _phase_status(self, message: PhaseStatusRead) -> None:
        if self.closing:
            return
        if message.phase == self.state.running_phase or message.phase in self.state.failed:
            # the runner's events say more while it runs, and a failure stays on screen (with
            # the API's message) until the phase is retried
            return
        self.phases_view.set_status(message.phase, message.status)

    @on(PlanRead)
    def _plan_read(self, message: PlanRead) -> None:
        self._plans_due.discard(message.phase)
        if self.closing:
            return
        self.phases_view.set_plan(message.phase, message.plan, message.error)

    # -- running phases

    def _phase(self, name: str | None) -> Row | None:
        return next((p for p in self.state.phase_list if p.name == name), None)

    def action_run_phase(self) -> None:
        name = self.phases_view.selected
        if name:
            self.action_run_phase_named(name)

    def action_run_phase_named(self, name: str) -> None:
        """Run one phase, after saying what it creates and changes. Phase 89 deletes: "run" on
        it is the rollback of everything, with the rollback's question."""
        phase = self._phase(name)
        if phase is None or not self._can_write():
            return
        if isinstance(phase, Operation) and phase.destructive:
            self.action_rollback_phase_named(name)
            return
        if not self._domain_set():
            return
        self._confirm_run(f"Run phase {phase.label}?", [phase], [name])

    def action_run_all(self) -> None:
        if not self._can_write() or not self._domain_set():
            return
        phases = self.state.install_phases  # never 88 or 89
        self._confirm_run("Run all remaining phases?", phases, None)

    def action_retry_failed(self) -> None:
        order = [p for p in self.state.phase_list if p.name in self.state.failed]
        if order and self._can_write() and self._domain_set():
            self._confirm_run("Retry the failed phases?", order, [p.name for p in order])

    def _can_write(self) -> bool:
        if self.state.running:
            self.notify("A run is in progress; wait for it to finish.", severity="warning")
            return False
        if self.state.plan_mode:
            self.notify("Plan mode: nothing is written.", severity="warning")
            return False
        return True

    def _domain_set(self) -> bool:
        """A run needs the real domain (host names, certificates, the OIDC client): asked for
        before the question, not found out after it."""
        settings = self.state.settings
        if settings.is_placeholder:
            self.notify(
                f"The domain is still the placeholder {settings.effective_domain!r}, which is for plans "
                "only. Set domain in the Config view (3), save it (ctrl+s) and run again.",
                title="Not run",
                severity="warning",
                timeout=10,
            )
            return False
        return True

    def _run_listing(self, phases: Sequence[Row]) -> list[str]:
        """What each phase would do, from the plans on screen (no network call)."""
        lines: list[str] = []
        for phase in phases:
            status = self.phases_view.statuses.get(phase.name)
            state = status.state.value if status else "state not read yet"
            if status is not None and status.healthy:
                lines.append(f"{phase.label}: healthy, verified and skipped")
                continue
            lines.append(f"{phase.label} ({state}):")
            plan = self.phases_view.plans.get(phase.name)
            if plan is None:
                lines.append("  plan not read yet")
                continue
            todo = [i for i in plan.items if i.action in ("create", "update", "refuse")]
            lines += [f"  {i.action:<7} {i.ref}" for i in todo[:12]]
            if len(todo) > 12:
                lines.append(f"  … and {len(todo) - 12} more")
            if not plan.items:
                lines += [f"  {note}" for note in plan.notes[:4]]
            elif not todo:
                lines.append("  every object as wanted; waits until it is healthy")
        return lines

    def _confirm_run(self, title: str, rows: Sequence[Row], wanted: list[str] | None) -> None:
        """List what each of ``rows`` would do and ask, then run ``wanted`` (None: every
        phase). The question offers a run option (adopt, force_conflicts) when the plan of a
        row it lists, or that row's last failure, calls for it."""
        from thinkube_devpi.tui.screens.confirm import ConfirmRun

        offers = []
        for row in rows:
            plan = self.phases_view.plans.get(row.name)
            if plan is not None and any(i.action == "refuse" for i in plan.items):
                offers.append("adopt")
            fix = self.state.fixes.get(row.name, "")
            if row.name in self.state.failed and fix in wording.RUN_OPTIONS:
                offers.append(fix)

        def answered(options: frozenset[str] | None) -> None:
            if options is not None:
                self._start("apply", wanted, options=options)

        listing = self._run_listing(rows)
        self.app.push_screen(ConfirmRun(title, listing, list(dict.fromkeys(offers))), answered)

    def action_rollback_phase(self) -> None:
        name = self.phases_view.selected
        if name:
            self.action_rollback_phase_named(name)

    def action_rollback_phase_named(self, name: str) -> None:
        """Read what the rollback would delete and keep (a worker: it asks the cluster), then
        ask. Nothing is deleted before the answer."""
        phase = self._phase(name)
        if phase is None or not self._can_write():
            return
        if isinstance(phase, Operation) and not phase.destructive:
            self.notify(f"{phase.label} leaves nothing behind: there is nothing to roll back.")
            return
        self.phases_view.add_log(
            name, Text("reading what a rollback would delete and keep…", style="#8a8a8a")
        )
        self.preview_rollback(name)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="rollback-preview",
        description="Reading what a rollback would delete",
    )
    def preview_rollback(self, name: str) -> None:
        import dataclasses

        ctx = self.state.ctx
        runner = Runner(ctx, phases=self.state.install_phases)
        listing = rollback_listing(runner, (name,))
        ns = self.state.settings.namespace
        with_data = None
        chosen = runner.rollback_selection([name])
        if any(p.number in (10, 20, 70) for p in chosen):
            with_data_ctx = dataclasses.replace(ctx, delete_package_data=ns)
            with_data = rollback_listing(Runner(with_data_ctx), (name,))
        self.post_message(RollbackPreviewRead(name, listing, with_data))

    @on(RollbackPreviewRead)
    def _rollback_preview(self, message: RollbackPreviewRead) -> None:
        if self.closing:
            return
        name = message.phase
        phase = self._phase(name)
        if phase is None:
            return
        from thinkube_devpi.tui.screens.confirm import ConfirmRollback

        def answered(choice: RollbackChoice | None) -> None:
            if choice is None:
                self.phases_view.add_log(
                    name, Text("rollback cancelled: nothing changed", style="#8a8a8a")
                )
                return
            self._start("rollback", [name], choice.delete_package_data)

        everything = isinstance(phase, Operation) and phase.destructive
        label = "the whole install (every phase)" if everything else f"phase {phase.label}"
        namespace = self.state.settings.namespace
        self.app.push_screen(
            ConfirmRollback(label, message.listing, namespace, message.with_data), answered
        )

    def _start(
        self,
        action: str,
        wanted: list[str] | None,
        delete_package_data: str | None = None,
        options: frozenset[str] = frozenset(),
    ) -> None:
        if not self._can_write():
            return
        state = self.state
        state.running = action
        for name in wanted or []:
            state.failed.discard(name)
        state.changed.publish(None)
        self.run_phases(action, wanted, delete_package_data, options)

    def _journal(self) -> Journal:
        journal_dir = self.state.journal_dir
        if journal_dir is None:
            return Journal()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        return Journal(journal_dir / f"{stamp}.jsonl")

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="runner",
        description="Running phases",
    )
    def run_phases(
        self,
        action: str,
        wanted: list[str] | None,
        delete_package_data: str | None,
        options: frozenset[str] = frozenset(),
    ) -> None:
        ctx = self.state.ctx
        ctx.cancel.clear()

        def emit(event: Event) -> None:
            self.post_message(RunnerEvent(event))

        runner = Runner(
            ctx,
            phases=self.state.install_phases,
            emit=emit,
            journal=self._journal(),
        )
        try:
            if action == "rollback":
                ctx.delete_package_data = delete_package_data
                ok = runner.rollback(wanted)
            else:
                ctx.adopt = "adopt" in options  # for this run only, as the admin ticked it
                ctx.force_conflicts = "force_conflicts" in options
                ok = runner.apply(wanted)
        except Exception as exc:  # a bad setting stops the run before anything is written
            message, hint = describe(exc)
            self.post_message(RunFinished(action, False, message, hint))
            return
        finally:
            ctx.delete_package_data = None
            ctx.adopt = ctx.force_conflicts = False
        self.post_message(RunFinished(action, ok))

    @on(Worker.StateChanged)
    def _runner_failed(self, event: Worker.StateChanged) -> None:
        # the toast is ViewScreen's; the run is over either way
        if event.state is WorkerState.ERROR and event.worker.group == "runner":
            message, hint = describe(event.worker.error) if event.worker.error else ("", "")
            self.post_message(RunFinished(self.state.running or "apply", False, message, hint))

    @on(RunnerEvent)
    def _runner_event(self, message: RunnerEvent) -> None:
        if self.closing:
            return
        state = self.state
        event = message.event
        if isinstance(event, PhaseStarted) and state.running:
            # "Run all" follows the phase that runs: cursor, plan and log
            self.phases_view.select(event.phase)
        self.phases_view.add_event(event)
        if isinstance(event, PhaseFinished):
            self._plans_due.add(event.phase)  # what it wrote or deleted changes its plan
            state.running_phase = None
            if event.ok:
                state.failed.discard(event.phase)
                state.fixes.pop(event.phase, None)
            else:
                state.failed.add(event.phase)
                state.fixes[event.phase] = event.setting
                self.notify(
                    f"{event.phase}: {wording.text(event.message)}",
                    title="Phase failed",
                    severity="error",
                    timeout=8,
                )
        else:
            state.running_phase = event.phase

    @on(RunFinished)
    def _run_finished(self, message: RunFinished) -> None:
        if self.closing:
            return
        state = self.state
        state.running = None
        state.running_phase = None
        self.phases_view.set_running(None)
        if message.error:
            name = self.phases_view.selected or state.phase_list[0].name
            line = Text(f"✘ {wording.text(message.error)}", style="bold #ff5f5f")
            if message.hint:
                line.append(f"\n  → {message.hint}", style="#ffaf00")
            self.phases_view.add_log(name, line)
            self.notify(wording.text(message.error), title="Not run", severity="error", timeout=8)
        state.changed.publish(None)
        self.refresh_phases()
