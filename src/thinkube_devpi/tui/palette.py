"""The command palette: the same actions as the keys, plus run and roll back per phase."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Protocol

from textual.command import DiscoveryHit, Hit, Hits, Provider

from thinkube_devpi.installer.operations import Operation
from thinkube_devpi.tui.commands import COMMANDS


class PhaseLike(Protocol):
    name: str
    title: str

    @property
    def label(self) -> str: ...


class PaletteHost(Protocol):
    """What the palette needs of the app: no more, so it does not import the App class."""

    @property
    def view(self) -> str: ...

    @property
    def plan_mode(self) -> bool: ...

    @property
    def phase_list(self) -> Sequence[PhaseLike]: ...

    async def run_command(self, action: str, view: str | None = None) -> None:
        """Run ``action`` on the App (``view`` None) or on that view's Screen."""


class DevpiCommands(Provider):
    """The palette offers what the keys do, plus run and roll back for each phase by name."""

    @property
    def devpi(self) -> PaletteHost:
        return self.app  # type: ignore[return-value]

    def _entries(self) -> list[tuple[str, Callable[[], Awaitable[None]], str]]:
        """(title, what it runs, help): the commands of the view shown and the App's, then run
        and roll back for each phase (on the phases view's Screen, from whichever view)."""
        app = self.devpi
        view = app.view
        out: list[tuple[str, Callable[[], Awaitable[None]], str]] = []
        for c in COMMANDS:
            if c.id == "quit" or (c.views and view not in c.views):
                continue
            where = view if c.on_screen else None
            out.append((c.title, partial(app.run_command, c.action, where), f"{c.help}  [{c.key}]"))
        if not app.plan_mode:
            # the same questions as the keys: a run says what it creates, a rollback what goes
            for phase in app.phase_list:
                if isinstance(phase, Operation) and phase.destructive:
                    continue
                out.append(
                    (
                        f"Run phase {phase.label}",
                        partial(app.run_command, f"run_phase_named('{phase.name}')", "phases"),
                        f"{phase.title} (asks first)",
                    )
                )
            for phase in app.phase_list:
                if isinstance(phase, Operation) and not phase.destructive:
                    continue  # the test leaves nothing behind to roll back
                title = (
                    "Roll back the whole install (phase 89)"
                    if isinstance(phase, Operation)
                    else f"Roll back phase {phase.label}"
                )
                out.append(
                    (
                        title,
                        partial(app.run_command, f"rollback_phase_named('{phase.name}')", "phases"),
                        "lists what it deletes and keeps, and asks first",
                    )
                )
        return out

    async def discover(self) -> Hits:
        for title, command, help_text in self._entries():
            yield DiscoveryHit(title, command, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, command, help_text in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(title),
                    command,
                    text=title,
                    help=help_text,
                )
