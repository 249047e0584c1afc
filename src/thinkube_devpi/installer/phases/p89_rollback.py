"""Phase 89: the whole install undone, every phase's rollback in reverse order.

`tk-devpi install rollback --all` does the same through the runner. Package data, adopted objects and
a namespace that still holds the PVC are kept (each phase says why).
"""

from __future__ import annotations

from thinkube_devpi.installer.events import Emit, Event, PhaseFinished, State
from thinkube_devpi.installer.phases.base import Phase, PhaseError, PhaseStatus, RollbackPreview


class RollbackPhase(Phase):
    number = 89
    name = "rollback"
    title = "Whole-install rollback"
    summary = "Every phase's rollback in reverse order; package data kept unless asked by name."
    in_apply_all = False
    destructive = True  # never run by apply or the TUI's "run": only by a confirmed rollback

    def status(self) -> PhaseStatus:
        return PhaseStatus(
            State.UNKNOWN,
            "on demand: undoes every phase, after listing what goes and what stays and asking",
        )

    def plan(self):  # type: ignore[no-untyped-def]
        plan = super().plan()
        keep = (
            "the package data PVC and its namespace are DELETED (asked for by name)"
            if self.ctx.delete_package_data == self.settings.namespace
            else "the package data PVC and its namespace are kept"
        )
        plan.notes.append(
            f"rolls back phases 86 to 10 in reverse order; {keep}; adopted objects are kept"
        )
        return plan

    def earlier(self) -> list[Phase]:
        from thinkube_devpi.installer.phases import build

        return [p for p in build(self.ctx) if p.number < self.number]

    def rollback_preview(self) -> RollbackPreview:
        preview = RollbackPreview()
        for phase in reversed(self.earlier()):
            if phase.was_applied():
                preview.extend(phase.rollback_preview())
        return preview

    def apply(self, emit: Emit) -> None:
        """The runner's rollback of every phase before this one (same events, same order)."""
        from thinkube_devpi.installer.runner import Runner

        phases = self.earlier()
        failed: list[str] = []

        def relay(event: Event) -> None:
            if isinstance(event, PhaseFinished) and not event.ok:
                failed.append(next(p.label for p in phases if p.name == event.phase))
            emit(event)

        Runner(self.ctx, phases=phases, emit=relay).rollback()
        if failed:
            raise PhaseError(
                f"Rollback of {', '.join(failed)} failed.", "Fix what each says and run it again."
            )

    def rollback(self, emit: Emit) -> None:
        self.log(emit, "nothing to undo: phase 89 is itself the rollback")
