"""thinkube-devpi-tui: the guided setup, with the live state of the cluster beside each phase.

The first screen paints before anything touches the network: the Kubernetes client (about 0.3 s to
import) is loaded by the connect worker after the first refresh. Every network call runs in a
thread worker; watches and log streams close at once through cancel events, so quitting never
waits for a server.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.containers import Container
from textual.widgets import ContentSwitcher, Footer, Input
from textual.worker import Worker, WorkerState

from thinkube_devpi import config
from thinkube_devpi.config import ConfigError, Settings
from thinkube_devpi.errors import Error
from thinkube_devpi.installer.events import PhaseFinished, PhaseStarted
from thinkube_devpi.installer.operations import Operation, Row, rows
from thinkube_devpi.installer.phases import build
from thinkube_devpi.installer.phases.base import Phase
from thinkube_devpi.installer.runner import Journal, Runner, describe_error, rollback_listing
from thinkube_devpi.installer.session import Session
from thinkube_devpi.tui.commands import COMMANDS, bindings, devpi_commands, hints
from thinkube_devpi.tui.keys import SerialKeysApp
from thinkube_devpi.tui.messages import (
    ClusterStatus,
    Connected,
    PhaseStatusRead,
    PlanRead,
    PodLogLines,
    PreflightDone,
    ProbeAnswered,
    RollbackPreviewRead,
    RunFinished,
    RunnerEvent,
    SecretKept,
    Trying,
    Unreachable,
)
from thinkube_devpi.tui.widgets.header import VIEWS, KubeHeader
from thinkube_devpi.tui.widgets.phases import PhasesView

if TYPE_CHECKING:
    from thinkube_devpi.installer.live.rows import ClusterSnapshot
    from thinkube_devpi.tui.screens.confirm import RollbackChoice
    from thinkube_devpi.tui.widgets.cluster import ClusterView
    from thinkube_devpi.tui.widgets.config import ConfigView

AGE_SECONDS = 5.0  # how often the cluster view's ages are re-rendered without an API change
PHASE_REFRESH_DELAY = 1.0
CONNECT_DEADLINE = 8.0  # s: a silent API server is reported and plan mode takes over
PROBE_EVERY = 5.0  # s between two liveness probes (GET /version) once connected
PROBE_DEADLINE = 5.0  # s without an answer before the header says the view is stale  # after a cluster change, re-read phase states at most this often


def _exit_soon(delay: float) -> None:
    """The app has restored the terminal and quit; a thread blocked on the network is all that
    keeps the process: end it."""
    time.sleep(delay)
    import os
    import sys

    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(0)


class DevpiApp(SerialKeysApp):
    """The guided setup. ``plan=True`` (or no reachable cluster) is plan mode: nothing written."""

    CSS_PATH = "app.tcss"
    TITLE = "thinkube-devpi"
    # an 80x24 terminal gets a narrower phase list and a folded header (app.tcss, header.py)
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]
    BINDINGS = bindings()
    COMMANDS = App.COMMANDS | {devpi_commands}

    def __init__(
        self,
        settings: Settings,
        *,
        config_path: Path | None = None,
        config_note: str = "",
        kubeconfig: str | Path | None = None,
        context: str | None = None,
        plan: bool = False,
        cache_dir: Path | None = None,
        journal_dir: Path | None = None,
        clock: Callable[[], float] = time.time,
        watch_cluster: bool = True,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.config_path = config_path
        self.config_note = config_note
        self.kubeconfig = kubeconfig
        self.context_name = context
        self.force_plan = plan
        self.cache_dir = cache_dir
        self.journal_dir = journal_dir
        self.clock = clock
        self.watch_cluster = watch_cluster
        self.session = Session(settings, why="plan mode requested" if plan else "connecting")
        self.ctx = self.session.context
        # the rows shown: the phases, then the runner's operations 88 test and 89 rollback
        self.phase_list: list[Row] = self.session.rows
        self.connection = "plan mode" if plan else "connecting"
        self.running: str | None = None  # "apply" / "rollback" while the runner works
        self.running_phase: str | None = None
        self.failed: set[str] = set()
        self.watcher: Any = None
        self.watch_cancel = threading.Event()
        self.log_cancel = threading.Event()
        self.view = "phases"
        self._attempt = 0  # connection attempts; only the newest one's answer counts
        self._tried = ""  # what the current attempt is waiting for (shown when it never answers)
        self._not_answering_since = ""
        self._probe_started: float | None = None
        self._last_probe_end = 0.0
        self._watchdog_timer: Any = None
        self.hard_exit_after: float | None = None  # set by main(): see action_quit
        self.previous_view = "phases"
        self._plans_due: set[str] = set()  # phases whose plan must be read (again)
        self._seen_status: dict[str, tuple[Any, str]] = {}  # state the last plan was read for
        self.prompt_mode = ""  # "filter" or "command" while the prompt line is open
        self._phase_refresh_timer: Any = None
        self._age_timer: Any = None
        # the cluster and config views are built the first time they are shown: the first
        # screen paints sooner without their ~60 widgets
        self._cluster: ClusterView | None = None
        self._config: ConfigView | None = None
        self._mounting: list[Any] = []  # views being mounted; showing one waits for it
        self.snapshot: ClusterSnapshot | None = None
        self.cluster_message = "waiting for the cluster…"

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield KubeHeader(id="header")
        # k9s-like: one view at a time, switched with 1/2/3; the header names the current one
        with ContentSwitcher(initial="phases", id="views"):
            with Container(id="phases"):
                yield PhasesView(self.phase_list, id="phases-view")
            yield Container(id="cluster")
            yield Container(id="config")
        # `/` filter and `:` command mode, k9s-style: one line above the footer, while in use
        prompt = Input(id="prompt")
        # never focused while hidden (not even by the screen's first auto-focus)
        prompt.display = False
        prompt.can_focus = False
        yield prompt
        yield Footer()

    @property
    def header(self) -> KubeHeader:
        return self.query_one(KubeHeader)

    @property
    def closing(self) -> bool:
        """True once the views are gone: a worker's late result then has nowhere to go."""
        return not self.query(PhasesView)

    @property
    def phases_view(self) -> PhasesView:
        return self.query_one(PhasesView)

    @property
    def cluster_view(self) -> ClusterView:
        """The cluster view, built (and mounted) on first use."""
        if self._cluster is None:
            from thinkube_devpi.tui.widgets.cluster import ClusterView

            view = ClusterView(id="cluster-view")
            view.clock = self.clock
            view.message = self.cluster_message
            view.snapshot = self.snapshot
            self._cluster = view
            self._mounting.append(self.query_one("#cluster", Container).mount(view))
        return self._cluster

    @property
    def config_view(self) -> ConfigView:
        """The config view, built (and mounted) on first use."""
        if self._config is None:
            from thinkube_devpi.tui.widgets.config import ConfigView

            self._config = ConfigView(self.settings, self.config_note, id="config-view")
            self._mounting.append(self.query_one("#config", Container).mount(self._config))
        return self._config

    @property
    def plan_mode(self) -> bool:
        return self.session.plan_mode

    @property
    def install_phases(self) -> list[Phase]:
        """The phases among the rows: what the runner is given (88 and 89 are its own)."""
        return [p for p in self.phase_list if isinstance(p, Phase)]

    def on_mount(self) -> None:
        header = self.header
        header.namespace = self.settings.namespace
        header.domain_note = self._domain_note()
        header.connection = self.connection
        self._update_hints()
        if self.force_plan:
            self._enter_plan_mode("--plan: nothing is read from or written to a cluster")
        else:
            self.header.reason = "loading the Kubernetes client…"
            # after the first paint: importing the kubernetes client costs ~0.3 s
            self.call_after_refresh(self.begin_connect)

    def _domain_note(self) -> str:
        if self.settings.is_placeholder:
            return f"{self.settings.effective_domain} (placeholder: set domain in Config to apply)"
        return self.settings.effective_domain

    # ------------------------------------------------------------------ connection

    def begin_connect(self) -> None:
        """Connect in a worker; a server that does not answer within CONNECT_DEADLINE is
        reported in the header (since when, what was tried) and plan mode takes over. The
        worker may stay blocked on the network: nothing waits for it."""
        self._attempt += 1
        self._tried = "the kubeconfig's API server"
        self.connection = "connecting"
        self.header.connection = "connecting"
        self.connect(self._attempt)
        attempt = self._attempt
        self.set_timer(CONNECT_DEADLINE, lambda: self._connect_overdue(attempt))

    def _connect_overdue(self, attempt: int) -> None:
        if self.closing or attempt != self._attempt or self.connection != "connecting":
            return
        self._not_answering_since = self._now()
        self._enter_plan_mode(
            f"since {self._not_answering_since}: asked {self._tried}, no answer in "
            f"{CONNECT_DEADLINE:g} s",
            "Check the VPN or network to the cluster, and the kubeconfig's server; "
            "ctrl+r tries again.",
            connection="not answering",
        )

    def _now(self) -> str:
        return time.strftime("%H:%M:%S", time.localtime(self.clock()))

    @on(Trying)
    def _trying(self, message: Trying) -> None:
        if message.attempt == self._attempt:
            self._tried = f"{message.server} (API discovery, then /version)"
            self.header.reason = f"asking {message.server}…"

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="connect",
        description="Connecting to the cluster",
    )
    def connect(self, attempt: int = 0) -> None:
        server = Session.server_in(self.kubeconfig, self.context_name)
        if server:
            self.post_message(Trying(attempt, server))
        try:
            session = Session.open(
                self.settings, self.kubeconfig, self.context_name, cache_dir=self.cache_dir
            )
            version = session.version()
        except Error as exc:
            message, hint = describe_error(exc)
            self.post_message(Unreachable(message, hint, attempt))
            return
        self.post_message(Connected(session, version, attempt))

    @on(Connected)
    def _connected(self, message: Connected) -> None:
        if self.closing or message.attempt != self._attempt:
            return
        self.session.attach(message.session)
        self._probe_started = None
        self._last_probe_end = time.monotonic()
        self._not_answering_since = ""
        self.header.since = ""
        if self._watchdog_timer is None:
            self._watchdog_timer = self.set_interval(1.0, self._watchdog)
        kube = self.session.require_kube()
        self.connection = "connected"
        header = self.header
        header.context = kube.context or "-"
        header.cluster = kube.cluster or kube.server
        header.connection = "connected"
        header.reason = ""
        header.version = message.version
        self._cluster_message("")
        self._update_hints()
        self.refresh_phases()
        self._start_watcher()

    @on(Unreachable)
    def _unreachable(self, message: Unreachable) -> None:
        if self.closing or message.attempt != self._attempt:
            return
        self._enter_plan_mode(message.reason, message.hint, connection="unreachable")

    # -- liveness: a cluster that stops answering mid-session turns the header stale

    def _watchdog(self) -> None:
        if self.closing or self.plan_mode:
            return
        now = time.monotonic()
        if self._probe_started is None:
            if now - self._last_probe_end >= PROBE_EVERY:
                self._probe_started = now
                self.probe()
        elif now - self._probe_started > PROBE_DEADLINE and self.connection == "connected":
            kube = self.session.kube
            server = kube.server if kube is not None else "the API server"
            ns = self.settings.namespace
            self._stale(f"GET {server}/api/v1/namespaces/{ns} got no answer in {PROBE_DEADLINE:g} s")

    @work(
        thread=True,
        exclusive=False,
        exit_on_error=False,
        group="probe",
        description="Asking the API server whether it still answers",
    )
    def probe(self) -> None:
        try:
            error = self.session.ping()
        except Error as exc:
            error = describe_error(exc)[0]
        except Exception as exc:  # a dropped connection, whatever the client raises
            error = f"the connection failed: {str(exc).splitlines()[0][:120] if str(exc) else 'no answer'}"
        self.post_message(ProbeAnswered(error))

    @on(ProbeAnswered)
    def _probe_answered(self, message: ProbeAnswered) -> None:
        self._probe_started = None
        self._last_probe_end = time.monotonic()
        if self.closing or self.plan_mode:
            return
        if message.error:
            self._stale(message.error)
        elif self.connection == "stale":
            self.connection = "connected"
            self._not_answering_since = ""
            self.header.connection = "connected"
            self.header.since = ""
            self.header.reason = ""
            self._start_watcher()
            self.refresh_phases()

    def _stale(self, what: str) -> None:
        if self.connection != "stale":
            self._not_answering_since = self._now()
        self.connection = "stale"
        header = self.header
        header.connection = "stale"
        header.since = f"since {self._not_answering_since}"
        header.reason = f"the API server stopped answering ({what}); showing the last state read"
        self._cluster_message(f"stale since {self._not_answering_since}: {what}")

    def _enter_plan_mode(self, reason: str, hint: str = "", connection: str = "plan mode") -> None:
        self._stop_watcher()
        self.session.detach(reason)
        self.connection = connection
        header = self.header
        header.connection = connection
        header.reason = reason + (
            "; plan mode: nothing is written" if connection != "plan mode" else ""
        )
        self._cluster_message(f"plan mode: {reason}")
        for phase in self.phase_list:
            self.phases_view.add_log(phase.name, Text(f"plan mode: {reason}", style="#87afd7"))
            if hint:
                self.phases_view.add_log(phase.name, Text(f"  → {hint}", style="#8a8a8a"))
        self._update_hints()
        self.refresh_phases()

    def _start_watcher(self) -> None:
        if not self.watch_cluster or self.plan_mode:
            return
        self._stop_watcher()
        self.watch_cancel = threading.Event()
        self.watcher = self.session.watcher(
            lambda snap: self.post_message(ClusterStatus(snap)), cancel=self.watch_cancel
        )
        self.watcher.start()
        if self._age_timer is None:
            self._age_timer = self.set_interval(AGE_SECONDS, self._tick)

    def _tick(self) -> None:
        if self._cluster is not None and self.view == "cluster":
            self._cluster.tick()

    def _cluster_message(self, text: str) -> None:
        self.cluster_message = text
        if self._cluster is not None:
            self._cluster.show_message(text)

    def _stop_watcher(self) -> None:
        self.watch_cancel.set()
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None

    @on(ClusterStatus)
    def _cluster_status(self, message: ClusterStatus) -> None:
        if self.closing:
            return
        self.snapshot = message.snapshot
        if self._cluster is not None:
            self._cluster.update_snapshot(message.snapshot)
        # the cluster moved: the phases' states may have too (not while the runner reports)
        if self.running is None and self._phase_refresh_timer is None:
            self._phase_refresh_timer = self.set_timer(
                PHASE_REFRESH_DELAY, self._delayed_phase_refresh
            )

    def _delayed_phase_refresh(self) -> None:
        self._phase_refresh_timer = None
        if self.running is None:
            self.refresh_phases(plans=False)

    # ------------------------------------------------------------------ phase states and plans

    def refresh_phases(self, plans: bool = True) -> None:
        """Read every phase's state again; with ``plans``, every plan too. A phase whose state
        changed has its plan read again as well, right after its state: the plan shown is
        always the plan for the state shown. A read cut short by a newer one leaves its
        unread plans due, so a cluster change never loses the first plan read."""
        if plans:
            self._plans_due.update(p.name for p in self.phase_list)
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
        runner = Runner(self.ctx, phases=self.install_phases)
        due = set(self._plans_due)
        for phase in self.phase_list:
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
        if message.phase == self.running_phase or message.phase in self.failed:
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

    # ------------------------------------------------------------------ running phases

    def _phase(self, name: str | None) -> Row | None:
        return next((p for p in self.phase_list if p.name == name), None)

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
        self._confirm_run(f"Run phase {phase.label}?", self._run_listing([phase]), [name])

    def action_run_all(self) -> None:
        if not self._can_write():
            return
        phases = self.install_phases  # never 88 or 89
        self._confirm_run("Run all remaining phases?", self._run_listing(phases), None)

    def action_retry_failed(self) -> None:
        order = [p for p in self.phase_list if p.name in self.failed]
        if order and self._can_write():
            self._confirm_run(
                "Retry the failed phases?", self._run_listing(order), [p.name for p in order]
            )

    def _can_write(self) -> bool:
        if self.running:
            self.notify("A run is in progress; wait for it to finish.", severity="warning")
            return False
        if self.plan_mode:
            self.notify("Plan mode: nothing is written.", severity="warning")
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

    def _confirm_run(self, title: str, lines: list[str], wanted: list[str] | None) -> None:
        from thinkube_devpi.tui.screens.confirm import ConfirmRun

        def answered(yes: bool | None) -> None:
            if yes:
                self._start("apply", wanted)

        self.push_screen(ConfirmRun(title, lines), answered)

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

        runner = Runner(self.ctx, phases=self.install_phases)
        listing = rollback_listing(runner, (name,))
        ns = self.settings.namespace
        with_data = None
        chosen = runner.rollback_selection([name])
        if any(p.number in (10, 20, 70) for p in chosen):
            ctx = dataclasses.replace(self.ctx, delete_package_data=ns)
            with_data = rollback_listing(Runner(ctx), (name,))
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
        self.push_screen(
            ConfirmRollback(label, message.listing, self.settings.namespace, message.with_data),
            answered,
        )

    def _start(
        self, action: str, wanted: list[str] | None, delete_package_data: str | None = None
    ) -> None:
        if self.running:
            self.notify("A run is in progress; wait for it to finish.", severity="warning")
            return
        if self.plan_mode:
            self.notify("Plan mode: nothing is written.", severity="warning")
            return
        self.running = action
        for name in wanted or []:
            self.failed.discard(name)
        self.refresh_bindings()
        self._update_hints()
        self.run_phases(action, wanted, delete_package_data)

    def _journal(self) -> Journal:
        if self.journal_dir is None:
            return Journal()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        return Journal(self.journal_dir / f"{stamp}.jsonl")

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="runner",
        description="Running phases",
    )
    def run_phases(
        self, action: str, wanted: list[str] | None, delete_package_data: str | None
    ) -> None:
        self.ctx.cancel.clear()
        runner = Runner(
            self.ctx,
            phases=self.install_phases,
            emit=lambda event: self.post_message(RunnerEvent(event)),
            journal=self._journal(),
        )
        try:
            if action == "rollback":
                self.ctx.delete_package_data = delete_package_data
                ok = runner.rollback(wanted)
            else:
                ok = runner.apply(wanted)
        except Exception as exc:  # a bad setting stops the run before anything is written
            message, hint = describe_error(exc)
            self.post_message(RunFinished(action, False, message, hint))
            return
        finally:
            self.ctx.delete_package_data = None
        self.post_message(RunFinished(action, ok))

    @on(RunnerEvent)
    def _runner_event(self, message: RunnerEvent) -> None:
        if self.closing:
            return
        event = message.event
        if isinstance(event, PhaseStarted) and self.running:
            # "Run all" follows the phase that runs: cursor, plan and log
            self.phases_view.select(event.phase)
        self.phases_view.add_event(event)
        if isinstance(event, PhaseFinished):
            self._plans_due.add(event.phase)  # what it wrote or deleted changes its plan
            self.running_phase = None
            if event.ok:
                self.failed.discard(event.phase)
            else:
                self.failed.add(event.phase)
                self.notify(
                    f"{event.phase}: {event.message}",
                    title="Phase failed",
                    severity="error",
                    timeout=8,
                )
        else:
            self.running_phase = event.phase

    @on(RunFinished)
    def _run_finished(self, message: RunFinished) -> None:
        if self.closing:
            return
        self.running = None
        self.running_phase = None
        self.phases_view.set_running(None)
        if message.error:
            name = self.phases_view.selected or self.phase_list[0].name
            line = Text(f"✘ {message.error}", style="bold #ff5f5f")
            if message.hint:
                line.append(f"\n  → {message.hint}", style="#ffaf00")
            self.phases_view.add_log(name, line)
            self.notify(message.error, title="Not run", severity="error", timeout=8)
        self.refresh_bindings()
        self._update_hints()
        self.refresh_phases()

    # ------------------------------------------------------------------ cluster view actions

    def action_toggle_faults(self) -> None:
        self.cluster_view.toggle_faults()

    def action_show_events(self) -> None:
        self.log_cancel.set()
        self.cluster_view.show_events()

    def action_pod_log(self) -> None:
        pod = self.cluster_view.selected_pod()
        if pod is None or self.plan_mode:
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
        try:
            for line in self.session.pod_log(namespace, name, tail_lines=1000, cancel=cancel):
                self.post_message(PodLogLines(name, [line]))
        except Error as exc:
            message, _ = describe_error(exc)
            self.post_message(PodLogLines(name, [], ended=message))
            return
        if not cancel.is_set():
            self.post_message(PodLogLines(name, [], ended="(log ended)"))

    @on(PodLogLines)
    def _pod_log_lines(self, message: PodLogLines) -> None:
        if self._cluster is not None:
            self._cluster.add_log_lines(message.pod, message.lines, message.ended)

    # ------------------------------------------------------------------ config view actions

    def action_preflight(self) -> None:
        self.config_view.show_preflight(None)
        self.run_preflight()

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="preflight",
        description="Preflight checks",
    )
    def run_preflight(self) -> None:
        self.post_message(PreflightDone(self.session.preflight()))

    @on(PreflightDone)
    def _preflight_done(self, message: PreflightDone) -> None:
        if self._config is not None:
            self._config.show_preflight(message.checks)

    def action_save_config(self) -> None:
        view = self.config_view
        if any(view.errors.values()):
            bad = next(k for k, v in view.errors.items() if v)
            self.notify(f"{bad}: {view.errors[bad]}", title="Not saved", severity="error")
            return
        try:
            settings = config.from_mapping(view.values(), source="the config view")
        except ConfigError as exc:
            view.show_error(exc.field, f"not allowed: {exc.allowed}")
            self.notify(str(exc), title="Not saved", severity="error")
            return
        path = config.save(settings, self.config_path)
        self.notify(f"Saved to {path}", title="Settings")
        view.saved(path)
        self.config_note = ""
        self._use_settings(settings)

    def _use_settings(self, settings: Settings) -> None:
        self.settings = settings
        self.ctx.settings = settings
        self.phase_list = rows(build(self.ctx))
        self.phases_view.set_phases(self.phase_list)
        self.header.namespace = settings.namespace
        self.header.domain_note = self._domain_note()
        self.refresh_phases()
        if self.watcher is not None:
            self._start_watcher()

    def on_config_view_choice_changed(self, message: Any) -> None:
        # read by local_state.flag as a Context attribute; the plans of 85/86 say what changes
        setattr(self.ctx, message.name, message.value)
        self.refresh_phases()

    def on_config_view_secret_entered(self, message: Any) -> None:
        # in memory for this run, as a Secret; never os.environ
        self.ctx.session_secrets[message.name] = message.secret
        if message.keyring:
            self.config_view.set_secret_state(message.name, "storing in the keyring…")
            self.store_secret(message.name, message.secret)
        else:
            self.config_view.set_secret_state(message.name, "in memory for this run")

    @work(
        thread=True,
        exclusive=False,
        exit_on_error=False,
        group="keyring",
        description="Storing a secret in the keyring",
    )
    def store_secret(self, name: str, secret: Any) -> None:
        from thinkube_devpi import secrets

        try:
            backend = secrets.store(name, secret)
        except Exception as exc:  # messages from secrets never hold the value
            self.post_message(
                SecretKept(name, f"not stored: {exc}; kept in memory for this run", False)
            )
            return
        self.post_message(SecretKept(name, f"in the keyring ({backend})"))

    @on(SecretKept)
    def _secret_kept(self, message: SecretKept) -> None:
        if self._config is not None:
            self._config.set_secret_state(message.name, message.where, message.ok)

    # ------------------------------------------------------------------ views, keys, refresh

    async def action_show_view(self, view: str) -> None:
        if view not in VIEWS:
            return
        if view != self.view:
            self.previous_view = self.view
        if self.prompt_mode:
            self._close_prompt()
        self.view = view
        built = self.cluster_view if view == "cluster" else self.config_view if view == "config" else None
        while self._mounting:
            # the keys typed right after this one go to the view's widgets, which must exist
            await self._mounting.pop(0)
        self.query_one("#views", ContentSwitcher).current = view
        self.header.view = view
        if view == "cluster":
            self.cluster_view.render_snapshot(new_ages=True)
            self.cluster_view.focus_table()
        elif built is not None:
            self.config_view.focus_form()
        else:
            self.screen.set_focus(self.phases_view.query_one("#phase-table"))
        self.refresh_bindings()
        self._update_hints()

    # ------------------------------------------------------------------ k9s habits

    def action_help(self) -> None:
        from thinkube_devpi.tui.commands import help_rows
        from thinkube_devpi.tui.screens.help import HelpScreen

        extra = {
            "phases": [("enter", "Select the phase under the cursor (its plan and log)")],
            "cluster": [("tab", "Move between the kinds list and the tables")],
            "config": [
                ("s", "Jump to the secret fields"),
                ("tab", "Next field; every setting is validated as you type"),
                ("esc", "Leave the field (then 1 2 3 switch views again)"),
            ],
        }.get(self.view, [])
        self.push_screen(HelpScreen(self.view, help_rows(self.view, extra)))

    @property
    def prompt(self) -> Input:
        return self.query_one("#prompt", Input)

    def _open_prompt(self, mode: str, placeholder: str) -> None:
        prompt = self.prompt
        prompt.display = True
        prompt.can_focus = True
        prompt.set_class(mode == "filter", "-filter")
        prompt.value = self._filter_text() if mode == "filter" else ""
        prompt.placeholder = placeholder
        prompt.border_title = mode
        self.prompt_mode = mode
        # at once, not after the keys already queued: "/redis" types into the prompt
        self.screen.set_focus(prompt)

    def _filter_text(self) -> str:
        if self.view == "cluster" and self._cluster is not None:
            return self._cluster.filter_text
        return self.phases_view.filter_text if self.view == "phases" else ""

    def _close_prompt(self) -> None:
        self.prompt.display = False
        self.prompt.can_focus = False
        self.prompt_mode = ""
        self._focus_view()

    def _focus_view(self) -> None:
        if self.view == "cluster":
            self.cluster_view.focus_table()
        elif self.view == "config":
            self.config_view.focus_form()
        else:
            self.screen.set_focus(self.phases_view.query_one("#phase-table"))

    def action_filter(self) -> None:
        self._open_prompt("filter", "/ filter: type to show matching rows, Enter keeps, Esc clears")

    def action_command_mode(self) -> None:
        self._open_prompt("command", ": phases cluster config pods deploy pvc svc ing jobs "
                          "workflows apps events")

    @on(Input.Changed, "#prompt")
    def _prompt_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self.prompt_mode == "filter":
            self._set_filter(event.value.strip())

    def _set_filter(self, text: str) -> None:
        if self.view == "cluster":
            self.cluster_view.set_filter(text)
        elif self.view == "phases":
            self.phases_view.set_filter(text)

    @on(Input.Submitted, "#prompt")
    async def _prompt_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        mode, text = self.prompt_mode, event.value.strip().lstrip(":/")
        self._close_prompt()
        if mode == "command" and text:
            await self.go_to(text)

    async def go_to(self, target: str) -> None:
        """`:name`: a view, or a resource kind of the cluster view (k9s aliases)."""
        from thinkube_devpi.tui.widgets.cluster import KINDS

        word = target.lower().strip()
        aliases = {"phase": "phases", "ph": "phases", "cl": "cluster", "cfg": "config",
                   "settings": "config"}
        word = aliases.get(word, word)
        if word in VIEWS:
            await self.action_show_view(word)
            return
        kinds = {short: kind for kind, short in KINDS}
        kinds.update({kind.lower(): kind for kind, _ in KINDS})
        kinds.update({"po": "Pod", "deployments": "Deployment", "pvcs": "PersistentVolumeClaim",
                      "services": "Service", "ingresses": "Ingress", "job": "Job", "wf":
                      "Workflow", "applications": "Application", "app": "Application"})
        if word in kinds or word in ("events", "ev", "event"):
            await self.action_show_view("cluster")
            if word in kinds:
                self.cluster_view.show_kind(kinds[word])
                kinds_table = self.cluster_view.query_one("#kinds")
                kinds_table.move_cursor(row=kinds_table.get_row_index(kinds[word]))  # type: ignore[attr-defined]
                self.cluster_view.focus_table()
            else:
                self.cluster_view.show_events()
                self.screen.set_focus(self.cluster_view.query_one("#events"))
            return
        choices = ", ".join([*VIEWS, *(short for _, short in KINDS), "events"])
        self.notify(f":{target} is not a view or a kind. Try one of: {choices}",
                    title="Unknown command", severity="warning")

    def action_cursor(self, direction: str) -> None:
        """j/k: down/up in the focused list or table."""
        method = getattr(self.focused, f"action_cursor_{direction}", None)
        if callable(method):
            method()

    async def action_back(self) -> None:
        """Esc: close the prompt (a filter is cleared), else clear a filter, else the view
        before this one."""
        if self.prompt_mode:
            if self.prompt_mode == "filter":
                self._set_filter("")
            self._close_prompt()
            return
        if self._filter_text():
            self._set_filter("")
            return
        if self.view != "phases":
            await self.action_show_view(self.previous_view if self.previous_view != self.view
                                        else "phases")

    def action_refresh(self) -> None:
        if self.plan_mode and not self.force_plan:
            self.header.reason = "connecting again…"
            self.begin_connect()
            return
        self.refresh_phases()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        command = next((c for c in COMMANDS if c.action.split("(")[0] == action), None)
        if command is not None and command.views and self.view not in command.views:
            return False
        if action in (
            "run_phase",
            "run_all",
            "rollback_phase",
            "run_phase_named",
            "rollback_phase_named",
        ):
            return None if (self.plan_mode or self.running) else True
        if action == "retry_failed":
            return True if (self.failed and not self.running and not self.plan_mode) else None
        if action == "pod_log":
            return True if not self.plan_mode else None
        return True

    def _update_hints(self) -> None:
        """The header's key hints and the footer follow what can run now."""
        self.refresh_bindings()
        shown = []
        for key, label in hints(self.view):
            command = next((c for c in COMMANDS if c.label == label), None)
            if command is not None and not self.check_action(command.action.split("(")[0], ()):
                continue
            shown.append((key, label))
        self.header.hints = tuple(shown)
        self.header.connection = self.connection

    # ------------------------------------------------------------------ quitting

    async def action_quit(self) -> None:
        if self.running:

            def answered(leave: bool | None) -> None:
                if leave:
                    self._leave()

            from thinkube_devpi.tui.screens.confirm import ConfirmQuit

            label = self._phase_label(self.running_phase) or "a phase"
            self.push_screen(ConfirmQuit(label), answered)
            return
        self._leave()

    def _phase_label(self, name: str | None) -> str:
        phase = self._phase(name)
        return phase.label if phase is not None else ""

    def _leave(self) -> None:
        """Quit now, whatever is in flight: streams close at once, and a worker stuck on a
        silent server cannot keep the process alive (asyncio would wait for its thread)."""
        self._close_streams()
        if self.hard_exit_after is not None:
            threading.Thread(
                target=_exit_soon, args=(self.hard_exit_after,), daemon=True, name="exit"
            ).start()
        self.exit()

    def _close_streams(self) -> None:
        """Close watches and log streams now; the threads end without waiting on a server."""
        self.ctx.cancel.set()
        self.log_cancel.set()
        self._stop_watcher()

    def on_unmount(self) -> None:
        self._close_streams()

    @on(Worker.StateChanged)
    def _worker_state(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            message, hint = describe_error(event.worker.error)
            self.notify(
                f"{message}\n{hint}".strip(),
                title=event.worker.description or "Error",
                severity="error",
                timeout=10,
            )
            if event.worker.group == "runner":
                self.post_message(RunFinished(self.running or "apply", False, message, hint))
