"""Phase 89: the whole install undone, every phase's rollback in reverse order.

`tk-devpi install rollback --all` does the same through the runner. Package data, adopted objects and
a namespace that still holds the PVC are kept (each phase says why).
"""

from __future__ import annotations

from thinkube_devpi.installer.events import Emit, PhaseFinished, PhaseStarted, State
from thinkube_devpi.installer.phases.base import Phase, PhaseError, PhaseStatus


class RollbackPhase(Phase):
    number = 89
    name = "rollback"
    title = "Whole-install rollback"
    summary = "Every phase's rollback in reverse order; package data kept unless asked by name."
    in_apply_all = False

    def status(self) -> PhaseStatus:
        return PhaseStatus(
            State.UNKNOWN, "run it to undo the install: tk-devpi install rollback --all"
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

    def apply(self, emit: Emit) -> None:
        from thinkube_devpi.installer.phases import build
        from thinkube_devpi.installer.runner import describe_error

        failed = []
        for phase in reversed(build(self.ctx)):
            if phase.number >= self.number or not phase.implemented:
                continue
            emit(PhaseStarted(phase.name, action="rollback", title=phase.title))
            try:
                phase.rollback(emit)
            except Exception as exc:
                message, hint = describe_error(exc)
                emit(
                    PhaseFinished(
                        phase.name, ok=False, state=State.FAILED, message=message, hint=hint
                    )
                )
                failed.append(phase.label)
                continue
            emit(PhaseFinished(phase.name, ok=True, state=State.MISSING, message="rolled back"))
        if failed:
            raise PhaseError(
                f"Rollback of {', '.join(failed)} failed.", "Fix what each says and run it again."
            )

    def rollback(self, emit: Emit) -> None:
        self.log(emit, "nothing to undo: phase 89 is itself the rollback")
