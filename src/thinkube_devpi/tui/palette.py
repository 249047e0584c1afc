"""The command palette: the same actions as the keys, plus run and roll back per phase."""

from __future__ import annotations

from collections.abc import Sequence
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
    def plan_mode(self) -> bool: ...

    @property
    def phase_list(self) -> Sequence[PhaseLike]: ...

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None: ...


class DevpiCommands(Provider):
    """The palette offers what the keys do, plus run and roll back for each phase by name."""

    @property
    def devpi(self) -> PaletteHost:
        return self.app  # type: ignore[return-value]

    def _entries(self) -> list[tuple[str, str, str]]:
        app = self.devpi
        out: list[tuple[str, str, str]] = []
        for c in COMMANDS:
            if c.id == "quit":
                continue
            name = c.action.split("(")[0]
            if app.check_action(name, ()) is False:
                continue
            out.append((c.title, c.action, f"{c.help}  [{c.key}]"))
        if not app.plan_mode:
            # the same questions as the keys: a run says what it creates, a rollback what goes
            for phase in app.phase_list:
                if isinstance(phase, Operation) and phase.destructive:
                    continue
                out.append(
                    (
                        f"Run phase {phase.label}",
                        f"run_phase_named('{phase.name}')",
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
                        f"rollback_phase_named('{phase.name}')",
                        "lists what it deletes and keeps, and asks first",
                    )
                )
        return out

    async def discover(self) -> Hits:
        for title, action, help_text in self._entries():
            yield DiscoveryHit(title, partial(self.app.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, action, help_text in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(title),
                    partial(self.app.run_action, action),
                    text=title,
                    help=help_text,
                )
