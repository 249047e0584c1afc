"""thinkube-devpi-tui: the guided setup, with the live state of the cluster beside each phase.

One Screen per view (``MODES``: phases, cluster, config; tui/screens), each owning its keys and
workers. The App holds what is app-wide: the connection (connect, liveness probe, plan mode,
the watcher that feeds the live snapshot), switching views, `?` help, `:` command mode and
quitting. What the views share lives in :class:`~thinkube_devpi.tui.state.TuiState`.

The first screen paints before anything touches the network: the Kubernetes client (about 0.3 s
to import) is loaded by the connect worker after the first refresh. Every network call runs in a
thread worker; watches and log streams close at once through cancel events, so quitting never
waits for a server.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import App
from textual.worker import Worker, WorkerState

from thinkube_devpi.config import Settings
from thinkube_devpi.errors import Error
from thinkube_devpi.installer.runner import describe_error
from thinkube_devpi.installer.session import Session
from thinkube_devpi.tui.commands import app_bindings, devpi_commands, help_rows
from thinkube_devpi.tui.keys import SerialKeysApp
from thinkube_devpi.tui.messages import (
    ClusterStatus,
    Connected,
    ProbeAnswered,
    Trying,
    Unreachable,
)
from thinkube_devpi.tui.screens.base import ViewScreen, describe, report_failure
from thinkube_devpi.tui.screens.cluster import ClusterScreen
from thinkube_devpi.tui.screens.config import ConfigScreen
from thinkube_devpi.tui.screens.phases import PhasesScreen
from thinkube_devpi.tui.state import TuiState

if TYPE_CHECKING:
    from thinkube_devpi.installer.live.rows import ClusterSnapshot

CONNECT_DEADLINE = 8.0  # s: a silent API server is reported and plan mode takes over
PROBE_EVERY = 5.0  # s between two liveness probes (GET /version) once connected
PROBE_DEADLINE = 5.0  # s without an answer before the header says the view is stale
# `:name` besides the views' own names
VIEW_ALIASES = {
    "phase": "phases",
    "ph": "phases",
    "cl": "cluster",
    "cfg": "config",
    "settings": "config",
}


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
    # one view per mode, switched with 1/2/3 or `:name`; the header lists them in this order
    MODES = {"phases": PhasesScreen, "cluster": ClusterScreen, "config": ConfigScreen}
    DEFAULT_MODE = "phases"
    BINDINGS = app_bindings()
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
        self.state = TuiState(
            settings,
            plan=plan,
            config_path=config_path,
            config_note=config_note,
            journal_dir=journal_dir,
            clock=clock,
        )
        self.kubeconfig = kubeconfig
        self.context_name = context
        self.cache_dir = cache_dir
        self.watch_cluster = watch_cluster
        self.watcher: Any = None
        self.watch_cancel = threading.Event()
        self.hard_exit_after: float | None = None  # set by main(): see action_quit
        self.previous_view = "phases"
        self._attempt = 0  # connection attempts; only the newest one's answer counts
        self._tried = ""  # what the current attempt is waiting for (shown when it never answers)
        self._not_answering_since = ""
        self._probe_started: float | None = None
        self._last_probe_end = 0.0
        self._watchdog_timer: Any = None

    # -- what the palette (tui/palette.py) asks of the app

    @property
    def view(self) -> str:
        return self.current_mode

    @property
    def plan_mode(self) -> bool:
        return self.state.plan_mode

    @property
    def phase_list(self) -> list[Any]:
        return self.state.phase_list

    def view_screen(self, view: str | None = None) -> ViewScreen:
        """The Screen of ``view`` (default: the one shown), built when it is first asked for."""
        screen = self.get_screen_stack(view)[0]
        assert isinstance(screen, ViewScreen)
        return screen

    async def run_command(self, action: str, view: str | None = None) -> None:
        """Run ``action`` where it lives: on the App, or on the Screen of ``view``."""
        await self.run_action(action, None if view is None else self.view_screen(view))

    # -- start

    def on_mount(self) -> None:
        if self.state.force_plan:
            self._enter_plan_mode("--plan: nothing is read from or written to a cluster")
        else:
            self.state.show(reason="loading the Kubernetes client…")
            # after the first paint: importing the kubernetes client costs ~0.3 s
            self.call_after_refresh(self.begin_connect)
        self.state.settings_changed.subscribe(self, self._settings_saved)

    # -- the connection

    def begin_connect(self) -> None:
        """Connect in a worker; a server that does not answer within CONNECT_DEADLINE is
        reported in the header (since when, what was tried) and plan mode takes over. The
        worker may stay blocked on the network: nothing waits for it."""
        self._attempt += 1
        self._tried = "the kubeconfig's API server"
        self.state.show("connecting")
        self.connect(self._attempt)
        attempt = self._attempt
        self.set_timer(CONNECT_DEADLINE, lambda: self._connect_overdue(attempt))

    def _connect_overdue(self, attempt: int) -> None:
        if attempt != self._attempt or self.state.connection != "connecting":
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
        return time.strftime("%H:%M:%S", time.localtime(self.state.clock()))

    @on(Trying)
    def _trying(self, message: Trying) -> None:
        if message.attempt == self._attempt:
            self._tried = f"{message.server} (API discovery, then /version)"
            # the kubeconfig's names, before the server answers (or while it does not)
            self.state.show(
                reason=f"asking {message.server}…",
                context=message.context or "-",
                cluster=message.cluster or message.server,
            )

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="connect",
        description="Connecting to the cluster",
    )
    def connect(self, attempt: int = 0) -> None:
        context, cluster, server = Session.target_in(self.kubeconfig, self.context_name)
        if server:
            self.post_message(Trying(attempt, server, context, cluster))
        try:
            session = Session.open(
                self.state.settings, self.kubeconfig, self.context_name, cache_dir=self.cache_dir
            )
            version = session.version()
        except Error as exc:
            message, hint = describe(exc)
            self.post_message(Unreachable(message, hint, attempt))
            return
        self.post_message(Connected(session, version, attempt))

    @on(Connected)
    def _connected(self, message: Connected) -> None:
        if message.attempt != self._attempt:
            return
        state = self.state
        state.session.attach(message.session)
        self._probe_started = None
        self._last_probe_end = time.monotonic()
        self._not_answering_since = ""
        if self._watchdog_timer is None:
            self._watchdog_timer = self.set_interval(1.0, self._watchdog)
        kube = state.session.require_kube()
        state.cluster_message = ""
        state.show(
            "connected",
            since="",
            context=kube.context or "-",
            cluster=kube.cluster or kube.server,
            reason="",
            version=message.version,
        )
        state.refresh_phases()
        self._start_watcher()

    @on(Unreachable)
    def _unreachable(self, message: Unreachable) -> None:
        if message.attempt == self._attempt:
            self._enter_plan_mode(message.reason, message.hint, connection="unreachable")

    # -- liveness: a cluster that stops answering mid-session turns the header stale

    def _watchdog(self) -> None:
        if self.plan_mode:
            return
        now = time.monotonic()
        if self._probe_started is None:
            if now - self._last_probe_end >= PROBE_EVERY:
                self._probe_started = now
                self.probe()
        elif now - self._probe_started > PROBE_DEADLINE and self.state.connection == "connected":
            kube = self.state.session.kube
            server = kube.server if kube is not None else "the API server"
            ns = self.state.settings.namespace
            self._stale(
                f"GET {server}/api/v1/namespaces/{ns} got no answer in {PROBE_DEADLINE:g} s"
            )

    @work(
        thread=True,
        exclusive=False,
        exit_on_error=False,
        group="probe",
        description="Asking the API server whether it still answers",
    )
    def probe(self) -> None:
        try:
            error = self.state.session.ping()
        except Error as exc:
            error = describe_error(exc)[0]
        except Exception as exc:  # a dropped connection, whatever the client raises
            error = f"the connection failed: {str(exc).splitlines()[0][:120] if str(exc) else 'no answer'}"
        self.post_message(ProbeAnswered(error))

    @on(ProbeAnswered)
    def _probe_answered(self, message: ProbeAnswered) -> None:
        self._probe_started = None
        self._last_probe_end = time.monotonic()
        if self.plan_mode:
            return
        if message.error:
            self._stale(message.error)
        elif self.state.connection == "stale":
            self._not_answering_since = ""
            self.state.show("connected", since="", reason="")
            self._start_watcher()
            self.state.refresh_phases()

    def _stale(self, what: str) -> None:
        if self.state.connection != "stale":
            self._not_answering_since = self._now()
        since = self._not_answering_since
        self.state.cluster_message = f"stale since {since}: {what}"
        self.state.show(
            "stale",
            since=f"since {since}",
            reason=f"the API server stopped answering ({what}); showing the last state read",
        )

    def _enter_plan_mode(self, reason: str, hint: str = "", connection: str = "plan mode") -> None:
        self._stop_watcher()
        state = self.state
        state.session.detach(reason)
        state.cluster_message = f"plan mode: {reason}"
        more = "; plan mode: nothing is written" if connection != "plan mode" else ""
        state.show(connection, reason=reason + more)
        state.plan_mode_entered.publish((reason, hint))
        state.refresh_phases()

    # -- the watcher: the live snapshot every view reads

    def _start_watcher(self) -> None:
        if not self.watch_cluster or self.plan_mode:
            return
        self._stop_watcher()
        self.watch_cancel = threading.Event()

        def deliver(snapshot: ClusterSnapshot) -> None:
            self.post_message(ClusterStatus(snapshot))

        self.watcher = self.state.session.watcher(deliver, cancel=self.watch_cancel)
        self.watcher.start()

    def _stop_watcher(self) -> None:
        self.watch_cancel.set()
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None

    @on(ClusterStatus)
    def _cluster_status(self, message: ClusterStatus) -> None:
        self.state.snapshot = message.snapshot
        self.state.snapshot_read.publish(message.snapshot)

    def _settings_saved(self, _: Settings) -> None:
        if self.watcher is not None:  # the namespace may have changed: watch the new one
            self._start_watcher()

    # -- views

    async def action_show_view(self, view: str) -> None:
        if view not in self.MODES:
            return
        if view != self.current_mode:
            self.previous_view = self.current_mode
        shown = self.view_screen()
        if shown.prompt_mode:
            shown.close_prompt()
        # awaited: the keys typed right after this one go to the view's widgets, which must exist
        await self.switch_mode(view)
        self.view_screen().shown()

    async def go_to(self, target: str) -> None:
        """`:name`: a view, or a resource kind of the cluster view (k9s aliases)."""
        from thinkube_devpi.tui.widgets.cluster import KIND_ALIASES, KINDS

        word = target.lower().strip()
        word = VIEW_ALIASES.get(word, word)
        if word in self.MODES:
            await self.action_show_view(word)
            return
        if word in KIND_ALIASES or word in ("events", "ev", "event"):
            await self.action_show_view("cluster")
            cluster = self.view_screen()
            assert isinstance(cluster, ClusterScreen)
            if word in KIND_ALIASES:
                cluster.show_kind(KIND_ALIASES[word])
            else:
                cluster.show_events()
            return
        choices = ", ".join([*self.MODES, *(short for _, short in KINDS), "events"])
        self.notify(
            f":{target} is not a view or a kind. Try one of: {choices}",
            title="Unknown command",
            severity="warning",
        )

    async def go_back(self) -> None:
        """Esc with nothing to close or clear: the view before this one."""
        if self.current_mode != "phases":
            back = self.previous_view if self.previous_view != self.current_mode else "phases"
            await self.action_show_view(back)

    def action_command_mode(self) -> None:
        self.view_screen().open_prompt(
            "command", ": phases cluster config pods deploy pvc svc ing jobs workflows apps events"
        )

    def action_help(self) -> None:
        from thinkube_devpi.tui.screens.help import HelpScreen

        screen = self.view_screen()
        self.push_screen(HelpScreen(screen.VIEW, help_rows(screen.VIEW, screen.HELP_EXTRA)))

    def action_refresh(self) -> None:
        if self.plan_mode and not self.state.force_plan:
            self.state.show(reason="connecting again…")
            self.begin_connect()
            return
        self.state.refresh_phases()

    # -- quitting

    async def action_quit(self) -> None:
        state = self.state
        if state.running:

            def answered(leave: bool | None) -> None:
                if leave:
                    self._leave()

            from thinkube_devpi.tui.screens.confirm import ConfirmQuit

            phase = next((p for p in state.phase_list if p.name == state.running_phase), None)
            self.push_screen(ConfirmQuit(phase.label if phase else "a phase"), answered)
            return
        self._leave()

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
        self.state.ctx.cancel.set()
        self.state.leaving.publish(None)
        self._stop_watcher()

    def on_unmount(self) -> None:
        self._close_streams()

    @on(Worker.StateChanged)
    def _worker_state(self, event: Worker.StateChanged) -> None:
        # the App's own workers (connect, probe); each view reports its own
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            report_failure(self, event.worker)
