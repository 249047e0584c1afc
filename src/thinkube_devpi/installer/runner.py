"""Ordering, dry run, resume and the event stream for the CLI and the TUI.

The runner never prints: it emits events. A phase already healthy is verified (its status compares
every object with the plan) and skipped unless ``force``; the first failing phase stops the run with
a message and a hint, and a re-run picks up from there.

Besides the phases it runs two operations, listed as rows 88 and 89 after them
(``installer/operations.py``): :meth:`Runner.verify`, the end-to-end test, and
:meth:`Runner.rollback_all`. Neither is ever part of ``apply`` with nothing named.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from thinkube_devpi import paths
from thinkube_devpi.config import ConfigError
from thinkube_devpi.errors import Error
from thinkube_devpi.installer.events import (
    CheckDone,
    Emit,
    Event,
    LogLine,
    ObjectApplied,
    ObjectDeleted,
    PhaseFinished,
    PhaseSkipped,
    PhaseStarted,
    State,
    WaitingFor,
    discard,
)
from thinkube_devpi.installer.kube import KubeError
from thinkube_devpi.installer.operations import ROLLBACK_ALL, VERIFY, Operation, Row, rows, select
from thinkube_devpi.installer.phases import build
from thinkube_devpi.installer.phases.base import (
    Context,
    Phase,
    PhaseError,
    PhaseStatus,
    Plan,
    RollbackPreview,
)

NEVER_APPLIED = "never applied: none of its objects exist, nothing to undo"

log = logging.getLogger(__name__)


class Journal:
    """History of runs under platformdirs' state dir: one JSON line per event. Never the truth."""

    def __init__(self, path: Path | None = None) -> None:
        if path is None:
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
            path = paths.runs_dir() / f"{stamp}.jsonl"
        self.path = path

    def record(self, event: Event) -> None:
        """Append one event. The journal is 0600 in a 0700 folder: it names hosts, users and
        objects of the cluster (never a secret value, but nothing for other users either)."""
        try:
            folder = self.path.parent
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            if folder.stat().st_mode & 0o077:
                folder.chmod(0o700)
            fd = os.open(
                self.path,
                os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
            )
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                if os.fstat(fd).st_mode & 0o077:
                    os.fchmod(fd, 0o600)
                fh.write(json.dumps(event_to_dict(event)) + "\n")
        except OSError as exc:  # a journal that cannot be written never stops an install
            log.warning("journal not written (%s): %s", self.path, exc.strerror)


def event_to_dict(event: Event) -> dict[str, Any]:
    data = dataclasses.asdict(event)
    data["event"] = type(event).__name__
    for key, value in list(data.items()):
        if isinstance(value, dict) and {"api_version", "kind", "name"} <= set(value):
            ref = getattr(event, key)
            data[key] = {
                "apiVersion": ref.api_version,
                "kind": ref.kind,
                "name": ref.name,
                "namespace": ref.namespace,
                "text": str(ref),
            }
        elif isinstance(value, State):
            data[key] = value.value
    return data


def describe_error(exc: BaseException) -> tuple[str, str]:
    """(message, hint) for the UIs: what failed, and what to do."""
    if isinstance(exc, ConfigError):
        return exc.message, exc.hint or "Fix the setting (`tk-devpi config show`) and re-run."
    if isinstance(exc, Error):
        return exc.message, exc.hint
    return (
        f"{type(exc).__name__}: {exc}",
        "This is a bug in thinkube-devpi; please report it with the journal.",
    )


# applied, but not healthy yet: the command line's next step (the TUI shows the state beside)
NOT_HEALTHY_HINT = "Run `tk-devpi install status` to see what is missing, then re-run."


def failure_event(name: str, exc: BaseException, before: str = "") -> PhaseFinished:
    """The event for a phase or operation that raised: what failed, what to do, and the setting
    or secret that fixes it (so each face can say where to set it)."""
    message, hint = describe_error(exc)
    return PhaseFinished(
        name,
        ok=False,
        state=State.FAILED,
        message=before + message,
        hint=hint,
        setting=exc.setting if isinstance(exc, Error) else "",
    )


class Runner:
    def __init__(
        self,
        ctx: Context,
        *,
        phases: list[Phase] | None = None,
        emit: Emit = discard,
        journal: Journal | None = None,
    ) -> None:
        self.ctx = ctx
        self.phases = phases if phases is not None else build(ctx)
        self._emit = emit
        self.journal = journal
        self.phase = ""  # where the run is: the phase, and the step within it
        self.step = ""

    def emit(self, event: Event) -> None:
        self._track(event)
        if self.journal is not None:
            self.journal.record(event)
        self._emit(event)

    def _track(self, event: Event) -> None:
        match event:
            case PhaseStarted(phase=phase, action=action):
                self.phase, self.step = phase, f"starting ({action})"
            case ObjectApplied(ref=ref, outcome=outcome):
                self.step = f"applying objects (last: {ref} {outcome})"
            case ObjectDeleted(ref=ref, outcome=outcome):
                self.step = f"removing objects (last: {ref} {outcome})"
            case WaitingFor(what=what, timeout=timeout):
                self.step = f"waiting up to {timeout:g}s for {what}"
            case LogLine(text=text) if not text.startswith("["):  # not a build pod's own line
                self.step = text[:160]
            case PhaseFinished():
                self.step = "finished"

    def interrupted(self) -> str:
        """Say where a Ctrl-C stopped the run, to the journal and the faces; returns the text."""
        self.ctx.cancel.set()  # watches and log streams close at once
        where = f"phase {self.phase}, {self.step}" if self.phase else "before the first phase"
        if self.phase and self.step != "finished":
            self.emit(
                PhaseFinished(
                    self.phase,
                    ok=False,
                    state=State.FAILED,
                    message=f"interrupted (Ctrl-C) while {self.step}",
                    hint="Nothing was rolled back: a re-run picks up where this stopped.",
                )
            )
        return where

    def rows(self, wanted: Iterable[str] | None = None) -> list[Row]:
        """The named rows (by number or name) in order: phases, then operations; all of them
        when none is named. ValueError naming the choices for a name that is neither."""
        every = rows(self.phases)
        if not wanted:
            return every
        chosen = {select(every, w).number for w in wanted}
        return [r for r in every if r.number in chosen]

    def selection(self, wanted: Iterable[str] | None = None) -> list[Phase]:
        """The named phases in install order (every phase when none is named)."""
        return [r for r in self.rows(wanted) if isinstance(r, Phase)]

    # ------------------------------------------------------------ read-only

    def plan(self, wanted: Iterable[str] | None = None) -> list[Plan]:
        return [
            r.plan(self.ctx) if isinstance(r, Operation) else r.plan() for r in self.rows(wanted)
        ]

    def status(self, wanted: Iterable[str] | None = None) -> list[tuple[Row, PhaseStatus]]:
        out: list[tuple[Row, PhaseStatus]] = []
        for row in self.rows(wanted):
            if isinstance(row, Operation):
                out.append((row, row.status(self.ctx)))
                continue
            try:
                out.append((row, row.status()))
            except (KubeError, PhaseError) as exc:
                message, _ = describe_error(exc)
                out.append((row, PhaseStatus(State.FAILED, message)))
        return out

    # ------------------------------------------------------------ writes

    def apply(
        self, wanted: Iterable[str] | None = None, *, dry_run: bool = False, force: bool = False
    ) -> bool:
        """Apply the selected phases in order; False at the first failure.

        With nothing named, every phase and no operation. Naming 88 (test) verifies after the
        named phases; naming 89 (rollback) is refused before anything runs: apply never
        deletes, a rollback lists what goes and asks."""
        chosen = self.rows(wanted) if wanted else list(self.phases)
        phases = [r for r in chosen if isinstance(r, Phase)]
        operations = [r for r in chosen if isinstance(r, Operation)]
        if ROLLBACK_ALL in operations:
            op = ROLLBACK_ALL
            self.emit(PhaseStarted(op.name, action="apply", title=op.title))
            self.emit(
                PhaseFinished(
                    op.name,
                    ok=False,
                    state=State.UNKNOWN,
                    message=f"Phase {op.label} deletes the install; apply never deletes.",
                    hint="Roll back instead: it lists what goes and what stays, and asks first.",
                )
            )
            return False
        if not dry_run:
            self.ctx.settings.require_real_domain()
            if not self._precheck(phases):
                return False
        if not all(self._apply_one(phase, dry_run=dry_run, force=force) for phase in phases):
            return False
        if VERIFY not in operations:
            return True
        if dry_run:
            self.emit(PhaseStarted(VERIFY.name, action="apply", title=VERIFY.title))
            return self._dry_run(VERIFY.plan(self.ctx))
        return self.verify()

    def _precheck(self, phases: list[Phase]) -> bool:
        """Every selected phase's own checks, before the first write of the run."""
        for phase in phases:
            try:
                if phase.needs_cluster:
                    self.ctx.require_kube()
                phase.precheck()
            except Exception as exc:
                if not isinstance(exc, Error):
                    log.exception("phase %s precheck failed unexpectedly", phase.label)
                self.emit(PhaseStarted(phase.name, action="apply", title=phase.title))
                self.emit(failure_event(phase.name, exc, before="before anything was written: "))
                return False
        return True

    def _dry_run(self, plan: Plan) -> bool:
        """What applying the plan's phase would do, as events; nothing written."""
        for note in plan.notes:
            self.emit(LogLine(plan.phase, note))
        for item in plan.items:
            outcome = {"create": "would create", "update": "would change"}.get(
                item.action, item.action
            )
            self.emit(ObjectApplied(plan.phase, item.ref, outcome))  # type: ignore[arg-type]
        self.emit(
            PhaseFinished(
                plan.phase, ok=True, state=State.UNKNOWN, message="dry run: nothing written"
            )
        )
        return True

    def _apply_one(self, phase: Phase, *, dry_run: bool, force: bool) -> bool:
        self.emit(PhaseStarted(phase.name, action="apply", title=phase.title))
        try:
            if dry_run:
                return self._dry_run(phase.plan())
            if phase.needs_cluster:
                self.ctx.require_kube()
            if not force:
                before = phase.status()
                if before.healthy:
                    self.emit(PhaseSkipped(phase.name, reason=f"already healthy: {before.reason}"))
                    self.emit(
                        PhaseFinished(
                            phase.name, ok=True, state=State.HEALTHY, message=before.reason
                        )
                    )
                    return True
            phase.apply(self.emit)
            after = phase.status()
        except Exception as exc:
            if not isinstance(exc, PhaseError | KubeError | ConfigError):
                log.exception("phase %s failed unexpectedly", phase.label)
            self.emit(failure_event(phase.name, exc))
            return False
        ok = after.state is State.HEALTHY
        self.emit(
            PhaseFinished(
                phase.name,
                ok=ok,
                state=after.state,
                message=after.reason,
                hint="" if ok else NOT_HEALTHY_HINT,
            )
        )
        return ok

    # ------------------------------------------------------------ operations

    def verify(self) -> bool:
        """Operation 88: prove the install works through the real host names, as a user would.

        Each check is a :class:`CheckDone` event; a failed one is followed by its hint. Writes
        nothing to the cluster (the scratch index it uploads to is deleted afterwards). Runs
        every time it is asked: its result cannot be read from the cluster, only found out."""
        from thinkube_devpi.installer.e2e import end_to_end, root_password, system_resolve

        op, settings = VERIFY, self.ctx.settings
        settings.require_real_domain()
        self.emit(PhaseStarted(op.name, action="apply", title=op.title))
        self.ctx.verified = None
        failed: list[str] = []
        count = 0
        try:
            kube = self.ctx.require_kube()
            with end_to_end(
                settings,
                kube=kube,
                root_password=root_password(settings, kube),
                resolve=self.ctx.resolve or system_resolve,
                ca_file=settings.ca_file,
            ) as e2e:
                for check in e2e.run():
                    count += 1
                    self.emit(CheckDone.of(op.name, check))
                    if not check.ok:
                        failed.append(check.name)
                        if check.hint:
                            self.emit(LogLine(op.name, f"     {check.hint}", "warning"))
        except Exception as exc:
            if not isinstance(exc, PhaseError | KubeError | ConfigError):
                log.exception("phase %s failed unexpectedly", op.label)
            self.emit(failure_event(op.name, exc))
            return False
        if failed:
            self.emit(
                PhaseFinished(
                    op.name,
                    ok=False,
                    state=State.FAILED,
                    message=f"{len(failed)} check(s) failed: {'; '.join(failed)}.",
                    hint="Each failed check above says what it expected and what it got.",
                )
            )
            return False
        self.ctx.verified = count
        self.emit(
            PhaseFinished(
                op.name, ok=True, state=State.HEALTHY, message=f"all {count} checks passed"
            )
        )
        return True

    def rollback_all(self) -> bool:
        """Operation 89: every phase's rollback in reverse order (see :meth:`rollback`)."""
        return self.rollback()

    def rollback_selection(self, wanted: Iterable[str] | None = None) -> list[Phase]:
        """The phases a rollback undoes, in install order. Nothing named, or 89 (rollback)
        among the names, means every phase; 88 (test) leaves nothing behind to undo."""
        chosen = self.rows(wanted)
        if not wanted or ROLLBACK_ALL in chosen:
            return list(self.phases)
        return [r for r in chosen if isinstance(r, Phase)]

    def rollback_preview(
        self, wanted: Iterable[str] | None = None
    ) -> list[tuple[Phase, RollbackPreview | None]]:
        """Per phase, in rollback order: what it would delete and keep (None: never applied,
        skipped). Read from the cluster and this machine; nothing is written."""
        out: list[tuple[Phase, RollbackPreview | None]] = []
        for phase in reversed(self.rollback_selection(wanted)):
            blind = phase.needs_cluster and self.ctx.kube is None  # plan mode: cannot tell
            out.append((phase, phase.rollback_preview() if blind or phase.was_applied() else None))
        return out

    def rollback(self, wanted: Iterable[str] | None = None) -> bool:
        """Roll back the selected phases in reverse order; keeps going past a failure.

        A phase none of whose objects exist is skipped (a partial install asks for no password
        of a phase it never reached). The finishing state is read back, so a phase that kept
        its package data says so."""
        ns = self.ctx.settings.namespace
        asked = self.ctx.delete_package_data
        if asked is not None and asked != ns:
            raise ConfigError(
                "--delete-package-data",
                asked,
                f"the namespace name ({ns!r}) to delete the package data in it",
            )
        ok = True
        for phase in reversed(self.rollback_selection(wanted)):
            self.emit(PhaseStarted(phase.name, action="rollback", title=phase.title))
            kept: list[str] = []

            def relay(event: Event, kept: list[str] = kept) -> None:
                if isinstance(event, ObjectDeleted) and event.outcome == "kept":
                    kept.append(f"{event.ref} ({event.reason})" if event.reason else str(event.ref))
                self.emit(event)

            try:
                if phase.needs_cluster:
                    self.ctx.require_kube()
                if not phase.was_applied():
                    self.emit(PhaseSkipped(phase.name, reason=NEVER_APPLIED))
                    self.emit(
                        PhaseFinished(phase.name, ok=True, state=State.MISSING, message=NEVER_APPLIED)
                    )
                    continue
                phase.rollback(relay)
            except Exception as exc:
                self.emit(failure_event(phase.name, exc))
                ok = False
                continue
            self.emit(self._rolled_back(phase, kept))
        return ok

    def _rolled_back(self, phase: Phase, kept: list[str]) -> PhaseFinished:
        """The phase's state after its rollback, read back, and what it kept."""
        message = "rolled back" + (f"; kept {', '.join(kept)}" if kept else "")
        state = State.MISSING
        if kept:
            try:
                state = phase.status().state
            except Exception:  # the rollback itself went well; the state is read again later
                state = State.UNKNOWN
        return PhaseFinished(phase.name, ok=True, state=state, message=message)


def rollback_listing(runner: Runner, wanted: Iterable[str] | None = None) -> list[str]:
    """What a rollback deletes and keeps, phase by phase, in the order it runs (for a question)."""
    lines: list[str] = []
    for phase, preview in runner.rollback_preview(wanted):
        if preview is None:
            lines.append(f"{phase.label}: skipped (never applied)")
            continue
        lines.append(f"{phase.label}:")
        lines += [f"  {line}" for line in preview.lines()]
    return lines
