"""The runner's two operations, shown as rows after the phases: 88 test and 89 rollback.

They are not phases: nothing of theirs lives in the cluster to plan, apply or read back. The runner
runs them (:meth:`~thinkube_devpi.installer.runner.Runner.verify` and
:meth:`~thinkube_devpi.installer.runner.Runner.rollback_all`); the CLI and the TUI list these
descriptions after the phases, under the numbers and names of DESIGN.md section 4.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from thinkube_devpi.installer.events import State
from thinkube_devpi.installer.phases.base import Context, Phase, PhaseStatus, Plan


@dataclass(frozen=True)
class Operation:
    """A row after the phases: what it is, what its plan says, and how to preview and run it."""

    number: int
    name: str
    title: str
    summary: str
    # deletes: never run by apply or the TUI's "run", only by a rollback that listed it and asked
    destructive: bool
    preview: str  # the command that shows what it would do, writing nothing
    command: str  # the command that runs it
    on_demand: str  # the row's state until it has run (nothing in the cluster says it)
    notes: Callable[[Context], str]  # what it would do, for its plan

    @property
    def label(self) -> str:
        return f"{self.number} {self.name}"

    def plan(self, ctx: Context) -> Plan:
        """A plan with no objects: the operation writes none of its own."""
        return Plan(self.name, self.number, self.title, notes=[self.notes(ctx)])

    def status(self, ctx: Context) -> PhaseStatus:
        if self is VERIFY and ctx.verified is not None:
            return PhaseStatus(State.HEALTHY, f"all {ctx.verified} checks passed")
        return PhaseStatus(State.UNKNOWN, self.on_demand)


def _verify_notes(ctx: Context) -> str:
    s = ctx.settings
    return (
        f"checks https://{s.dashboard} (302 to {s.issuer}), https://{s.api} (open /+api, no "
        "anonymous users, upload and pip install through a scratch index that is deleted "
        "afterwards); writes nothing to the cluster"
    )


def _rollback_notes(ctx: Context) -> str:
    keep = (
        "the package data PVC and its namespace are DELETED (asked for by name)"
        if ctx.delete_package_data == ctx.settings.namespace
        else "the package data PVC and its namespace are kept"
    )
    return f"rolls back phases 86 to 10 in reverse order; {keep}; adopted objects are kept"


VERIFY = Operation(
    number=88,
    name="test",
    title="End-to-end test",
    summary="Checks the dashboard gate, the open API, uploads and installs through the real hosts.",
    destructive=False,
    preview="tk-devpi install plan --phase test",
    command="tk-devpi install test",
    on_demand="found out by running it (`tk-devpi install test`)",
    notes=_verify_notes,
)

ROLLBACK_ALL = Operation(
    number=89,
    name="rollback",
    title="Whole-install rollback",
    summary="Every phase's rollback in reverse order; package data kept unless asked by name.",
    destructive=True,
    preview="tk-devpi install rollback --all --dry-run",
    command="tk-devpi install rollback --all",
    on_demand="on demand: undoes every phase, after listing what goes and what stays and asking",
    notes=_rollback_notes,
)

# listed after the phases, in this order
OPERATIONS: tuple[Operation, ...] = (VERIFY, ROLLBACK_ALL)

Row = Phase | Operation
"""One row of the install as the faces list it: a phase, or an operation after the phases."""


def rows(phases: list[Phase]) -> list[Row]:
    """The rows the faces show: the phases in install order, then the operations."""
    return [*phases, *OPERATIONS]


def select(rows: list[Row], wanted: str) -> Row:
    """A row by number or name; a clear error naming the choices otherwise."""
    for row in rows:
        if wanted in (str(row.number), row.name):
            return row
    choices = ", ".join(row.label for row in rows)
    raise ValueError(f"unknown phase {wanted!r}: choose one of {choices}")
