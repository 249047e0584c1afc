"""Fixtures for the TUI tests: an app factory and waiting helpers (the rest is the root's)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar

import pytest
from textual.message import Message
from textual.notifications import Notify
from textual.pilot import Pilot
from textual.worker import WorkerCancelled

from thinkube_devpi.config import Settings
from thinkube_devpi.installer.events import PhaseFinished, PhaseStarted
from thinkube_devpi.tui.app import DevpiApp
from thinkube_devpi.tui.messages import RunFinished, RunnerEvent
from thinkube_devpi.tui.widgets.cluster import ClusterView
from thinkube_devpi.tui.widgets.header import KubeHeader
from thinkube_devpi.tui.widgets.phases import PhasesView

M = TypeVar("M", bound=Message)

FIXED_NOW = 1_800_000_000.0  # a fixed clock for ages in snapshots
SIZE = (120, 34)


@pytest.fixture
def make_app(tmp_path: Path, settings: Settings) -> Callable[..., DevpiApp]:
    def make(**kwargs: Any) -> DevpiApp:
        kwargs.setdefault("config_path", tmp_path / "config.toml")
        kwargs.setdefault("cache_dir", tmp_path / "cache")
        kwargs.setdefault("journal_dir", tmp_path / "journal")
        app = DevpiApp(kwargs.pop("settings", settings), **kwargs)
        app.animation_level = "none"  # no tab underline sliding: pauses return at once
        return app

    return make


async def settle(app: DevpiApp, pilot: Pilot[Any]) -> None:
    """Let workers finish and the screen catch up."""
    with suppress(WorkerCancelled):
        await app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()  # the footer recomposes after the bindings refresh


async def until(
    pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 10.0, what: str = ""
) -> None:
    """Wait, keeping the app running, until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await pilot.pause(0.05)
    await asyncio.sleep(0)


def phases_of(app: DevpiApp) -> PhasesView:
    """The phases view's widget (its Screen lives whichever view is shown)."""
    return app.view_screen("phases").query_one(PhasesView)


def log_of(app: DevpiApp, phase: str) -> str:
    """The phase's log as the phases view shows it, one line per event."""
    return "\n".join(t.plain for t in phases_of(app).logs[phase])


def cluster_of(app: DevpiApp) -> ClusterView:
    """The cluster view's widget, once the cluster view has been shown."""
    return app.view_screen("cluster").query_one(ClusterView)


def header_of(app: DevpiApp) -> KubeHeader:
    """The header of the view shown."""
    return app.view_screen().header


class Seen:
    """What the app and its views were told, in order: ``app.run_test(message_hook=seen)``.

    A test reads the story from it (the cluster answered, a phase started, it failed, the run
    ended) rather than from the app's attributes. A message a view handles bubbles on to the
    App: it is recorded once."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._ids: set[int] = set()  # the list keeps each message alive: ids stay unique

    def __call__(self, message: Message) -> None:
        if id(message) not in self._ids:
            self._ids.add(id(message))
            self.messages.append(message)

    def of(self, kind: type[M]) -> list[M]:
        return [m for m in self.messages if isinstance(m, kind)]

    def started(self) -> list[str]:
        """The phases the runner started, in order."""
        return [m.event.phase for m in self.of(RunnerEvent) if isinstance(m.event, PhaseStarted)]

    def failed(self) -> set[str]:
        """The phases whose last run failed."""
        last: dict[str, bool] = {}
        for m in self.of(RunnerEvent):
            if isinstance(m.event, PhaseFinished):
                last[m.event.phase] = m.event.ok
        return {phase for phase, ok in last.items() if not ok}

    def runs_ended(self) -> list[RunFinished]:
        """Every run (apply or rollback) that ended, with how."""
        return self.of(RunFinished)

    def notes(self) -> list[str]:
        """The texts of the notifications the app showed (its toasts), in order."""
        return [m.notification.message for m in self.of(Notify)]
