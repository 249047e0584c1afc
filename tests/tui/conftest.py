"""Fixtures for the TUI tests: an app factory and waiting helpers (the rest is the root's)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.worker import WorkerCancelled

from thinkube_devpi.config import Settings
from thinkube_devpi.tui.app import DevpiApp
from thinkube_devpi.tui.widgets.cluster import ClusterView
from thinkube_devpi.tui.widgets.header import KubeHeader
from thinkube_devpi.tui.widgets.phases import PhasesView

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


def cluster_of(app: DevpiApp) -> ClusterView:
    """The cluster view's widget, once the cluster view has been shown."""
    return app.view_screen("cluster").query_one(ClusterView)


def header_of(app: DevpiApp) -> KubeHeader:
    """The header of the view shown."""
    return app.view_screen().header
