"""`tk-devpi install ...`: the install, headless. Renders the runner's events as text or JSON.

One thing, so one module past 500 lines: the `install` command group and its renderers.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import click

from thinkube_devpi.config import Settings, load
from thinkube_devpi.installer.events import (
    CheckDone,
    Event,
    LogLine,
    ObjectApplied,
    ObjectDeleted,
    PhaseFinished,
    PhaseSkipped,
    PhaseStarted,
    State,
    WaitingFor,
)
from thinkube_devpi.installer.operations import ROLLBACK_ALL, VERIFY
from thinkube_devpi.installer.phases.base import Plan
from thinkube_devpi.installer.preflight import Check
from thinkube_devpi.installer.runner import Journal, Runner, event_to_dict, rollback_listing
from thinkube_devpi.installer.session import Session

STATE_STYLE = {
    State.HEALTHY: "green",
    State.PROGRESSING: "yellow",
    State.MISSING: "dim",
    State.FAILED: "red",
    State.UNKNOWN: "cyan",
}
CHECK_MARK = {True: "[green]ok[/]  ", False: "[red]FAIL[/]", None: "[cyan]--[/]  "}


def check_markup(check: Check) -> str:
    """One check as a row, the same for preflight's and phase 88's: mark, name, finding."""
    from rich.markup import escape

    return f"{CHECK_MARK[check.ok]} {escape(check.text)}"


OUTCOME_STYLE = {
    "created": "green",
    "changed": "yellow",
    "unchanged": "dim",
    "adopted": "magenta",
    "would create": "green",
    "would change": "yellow",
    "deleted": "red",
    "absent": "dim",
    "kept": "cyan",
    "create": "green",
    "update": "yellow",
    "refuse": "red",
    "unknown": "cyan",
}


class _Seconds(click.ParamType):
    """A finite number of seconds from 1 to a day (click's FloatRange lets nan through)."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        import math

        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number) or not 1 <= number <= 86400:
            self.fail(f"{value!r} is not a number of seconds from 1 to 86400", param, ctx)
        return number


WAIT_SECONDS = _Seconds()


class Options:
    def __init__(
        self, config: Path | None, kubeconfig: Path | None, context: str | None, output: str
    ) -> None:
        self.config = config
        self.kubeconfig = kubeconfig
        self.context = context
        self.output = output

    def settings(self) -> Settings:
        return load(self.config)

    def session(self, *, required: bool, offline: bool = False) -> Session:
        """The cluster's session; plan mode (``why`` says why) when that is allowed."""
        settings = self.settings()
        if offline:
            return Session(settings, why="--offline")
        return Session.open(settings, self.kubeconfig, self.context, required=required)


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _common(fn: Any) -> Any:
    fn = click.option(
        "-o",
        "--output",
        type=click.Choice(["text", "json"]),
        default="text",
        help="Output format; json is for scripts.",
    )(fn)
    return fn


def _phase_option(fn: Any) -> Any:
    return click.option(
        "--phase",
        "phases",
        multiple=True,
        metavar="N|NAME",
        help="Only this phase (number or name); repeatable. Default: all.",
    )(fn)


@click.group()
@click.option(
    "--config",
    type=click.Path(path_type=Path),
    default=None,
    help="Settings file (default: the user config dir, or THINKUBE_DEVPI_CONFIG).",
)
@click.option(
    "--kubeconfig",
    type=click.Path(path_type=Path),
    default=None,
    envvar="KUBECONFIG",
    help="kubeconfig file (default: KUBECONFIG, then ~/.kube/config).",
)
@click.option("--context", default=None, help="kubeconfig context (default: the current one).")
@click.pass_context
def install(
    ctx: click.Context, config: Path | None, kubeconfig: Path | None, context: str | None
) -> None:
    """Plan, apply, check and roll back the DevPi install, phase by phase.

    \b
    tk-devpi install plan                 what each phase would create (no cluster needed)
    tk-devpi install apply --dry-run      what apply would do, nothing written
    tk-devpi install apply                run the phases in order (resumes; healthy ones are skipped)
    tk-devpi install status               health of each phase, read from the cluster
    tk-devpi install rollback --phase 30  undo one phase (package data is always kept unless asked)
    tk-devpi install render --out DIR     every object as YAML, Secrets without their values
    """
    ctx.obj = Options(config, kubeconfig, context, "text")


def _validate_phases(runner: Runner, phases: tuple[str, ...]) -> None:
    try:
        runner.selection(phases)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--phase") from None


@install.command()
@_phase_option
@click.option(
    "--offline", is_flag=True, help="Do not contact the cluster: plan from settings only."
)
@_common
@click.pass_obj
def plan(opts: Options, phases: tuple[str, ...], offline: bool, output: str) -> None:
    """Show every object each phase would create or change. Writes nothing.

    Works without a cluster (plan mode): objects are listed without a diff.
    """
    session = opts.session(required=False, offline=offline)
    settings = session.settings
    runner = session.runner()
    _validate_phases(runner, phases)
    plans = runner.plan(phases)
    if output == "json":
        click.echo(
            json.dumps(
                {
                    "cluster": session.cluster_info(),
                    "domain": settings.effective_domain,
                    "placeholder_domain": settings.is_placeholder,
                    "phases": [p.to_dict() for p in plans],
                },
                indent=2,
            )
        )
        return
    console = _console()
    _header(console, session)
    for p in plans:
        _print_plan(console, p)


def _header(console: Any, session: Session) -> None:
    settings, kube = session.settings, session.kube
    if kube is None:
        console.print(f"[cyan]Plan mode[/]: no cluster ({session.why}). Nothing is written.")
    else:
        console.print(f"Cluster: [bold]{kube.context or kube.server}[/] ({kube.server})")
    if settings.is_placeholder:
        console.print(
            f"[yellow]Domain is the placeholder {settings.effective_domain}[/]: "
            "set it with `tk-devpi config init` before apply."
        )


def _print_plan(console: Any, plan: Plan) -> None:
    console.print(f"\n[bold]{plan.number} {plan.phase}[/]  {plan.title}")
    for note in plan.notes:
        console.print(f"   [dim]{note}[/]")
    for item in plan.items:
        style = OUTCOME_STYLE.get(item.action, "")
        action = "(no cluster)" if item.action == "unknown" else item.action
        console.print(f"   [{style}]{action:>12}[/]  {item.ref}")
        if item.secret_keys:
            for key, source in item.secret_keys.items():
                console.print(f"                  key {key}: {source}")
        for change in item.changes[:8]:
            console.print(f"                  [dim]{change}[/]")


@install.command()
@_phase_option
@click.option("--dry-run", is_flag=True, help="Show what would be written; write nothing.")
@click.option("--force", is_flag=True, help="Re-apply phases that are already healthy.")
@click.option(
    "--adopt",
    is_flag=True,
    help="Take over existing objects not made by thinkube-devpi (rollback keeps them).",
)
@click.option(
    "--force-conflicts", is_flag=True, help="Take over fields another field manager owns."
)
@click.option(
    "--timeout",
    type=WAIT_SECONDS,
    default=300,
    show_default=True,
    help="Seconds to wait for each phase to become healthy.",
)
@_common
@click.pass_obj
def apply(
    opts: Options,
    phases: tuple[str, ...],
    dry_run: bool,
    force: bool,
    adopt: bool,
    force_conflicts: bool,
    timeout: float,
    output: str,
) -> None:
    """Apply the phases in order. Healthy phases are verified and skipped (resume)."""
    settings = opts.settings()
    if not dry_run:
        settings.require_real_domain()
    session = opts.session(required=not dry_run).with_options(
        adopt=adopt, force_conflicts=force_conflicts, wait_timeout=timeout
    )
    renderer = EventPrinter(output)
    runner = session.runner(emit=renderer, journal=None if dry_run else Journal())
    _validate_phases(runner, phases)
    if phases and ROLLBACK_ALL in runner.rows(phases):
        raise click.UsageError(
            f"phase {ROLLBACK_ALL.label} deletes the install, and apply never deletes: run "
            f"`{ROLLBACK_ALL.command}` (it lists what goes and what stays, and asks)."
        )
    if session.plan_mode:
        renderer.note(f"Plan mode: no cluster ({session.why}); showing what apply would do.")
    _run_and_exit(renderer, lambda: runner.apply(phases, dry_run=dry_run, force=force), runner)


@install.command()
@_phase_option
@click.option(
    "--watch", is_flag=True, help="Keep watching: redraw when the cluster changes (Ctrl+C stops)."
)
@click.option("--duration", type=click.FloatRange(min=0.1), default=None, hidden=True)
@_common
@click.pass_obj
def status(
    opts: Options, phases: tuple[str, ...], watch: bool, duration: float | None, output: str
) -> None:
    """Health of each phase, read from the cluster every time (never remembered).

    With --watch, the live objects of the devpi namespace, the build's workflows and the ArgoCD
    application are watched too, and the view is redrawn whenever they change.
    """
    session = opts.session(required=True)
    runner = session.runner()
    _validate_phases(runner, phases)
    if watch:
        _watch_status(runner, session, phases, output, duration)
        return
    rows = runner.status(phases)
    if output == "json":
        click.echo(json.dumps(_status_rows(rows), indent=2))
    else:
        _console().print(_status_table(rows))
    bad = [s for _, s in rows if s.state in (State.FAILED,)]
    sys.exit(1 if bad else 0)


def _status_rows(rows: list[tuple[Any, Any]]) -> list[dict[str, Any]]:
    return [{"number": p.number, "name": p.name, **s.to_dict()} for p, s in rows]


def _status_table(rows: list[tuple[Any, Any]], snapshot: Any = None) -> Any:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    phases = Table.grid(padding=(0, 1))
    for p, s in rows:
        phases.add_row(
            f"{p.number:>3}", p.name, Text(s.state.value, style=STATE_STYLE[s.state]), s.reason
        )
    if snapshot is None:
        return phases
    live = Table.grid(padding=(0, 2))
    for table in (*snapshot.tables, snapshot.events):
        faults = sum(1 for r in table.rows if r.health.is_fault)
        detail = table.error or ", ".join(f"{r.name} {r.status}" for r in table.rows[:4])
        live.add_row(
            table.title,
            Text(f"{faults} fault(s)" if faults else "ok", style="red" if faults else "green"),
            detail,
        )
    return Group(phases, Text(""), live)


def _watch_status(
    runner: Runner,
    session: Session,
    phases: tuple[str, ...],
    output: str,
    duration: float | None,
) -> None:
    """Redraw on every cluster snapshot; phase states are read again at most every 2 s."""
    import queue
    import time

    snapshots: queue.Queue[Any] = queue.Queue()
    watcher = session.watcher(snapshots.put)
    watcher.start()
    deadline = None if duration is None else time.monotonic() + duration
    rows, read_at = runner.status(phases), time.monotonic()

    def frames() -> Iterator[Any]:
        """Each new snapshot, with phase states read again at most every 2 s."""
        nonlocal rows, read_at
        while deadline is None or time.monotonic() < deadline:
            try:
                snap = snapshots.get(timeout=0.5)
            except queue.Empty:
                continue
            if time.monotonic() - read_at > 2:
                rows, read_at = runner.status(phases), time.monotonic()
            yield snap

    try:
        if output == "json":
            for snap in frames():
                tables = {
                    t.kind: [
                        {"name": r.name, "status": r.status, "health": r.health.value}
                        for r in t.rows
                    ]
                    for t in snap.tables
                }
                click.echo(
                    json.dumps(
                        {"phases": _status_rows(rows), "objects": tables, "faults": snap.faults}
                    )
                )
            return
        from rich.live import Live

        with Live(_status_table(rows), console=_console(), auto_refresh=False) as live:
            for snap in frames():
                live.update(_status_table(rows, snap), refresh=True)
    except KeyboardInterrupt:
        pass
    finally:
        watcher.stop()


@install.command()
@_phase_option
@click.option("--all", "everything", is_flag=True, help="Roll back every phase, in reverse order.")
@click.option(
    "--delete-package-data",
    metavar="NAMESPACE",
    default=None,
    help="Also delete the package data PVC; the value must be the namespace name.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--dry-run", is_flag=True, help="List what would be deleted and kept; delete nothing."
)
@_common
@click.pass_obj
def rollback(
    opts: Options,
    phases: tuple[str, ...],
    everything: bool,
    delete_package_data: str | None,
    yes: bool,
    dry_run: bool,
    output: str,
) -> None:
    """Undo phases in reverse order. Deletes only objects thinkube-devpi made and did not adopt.

    The package data (PVC devpi-data-pvc) and a namespace that still holds it are kept unless
    --delete-package-data names the namespace.
    """
    if not phases and not everything:
        raise click.UsageError("Say which phases to roll back: --phase N (repeatable) or --all.")
    settings = opts.settings()
    if delete_package_data is not None and delete_package_data != settings.namespace:
        raise click.BadParameter(
            f"{delete_package_data!r} is not the namespace; to delete the package data pass "
            f"--delete-package-data={settings.namespace}",
            param_hint="--delete-package-data",
        )
    session = opts.session(required=True).with_options(delete_package_data=delete_package_data)
    renderer = EventPrinter(output)
    runner = session.runner(emit=renderer, journal=Journal())
    _validate_phases(runner, phases)
    if phases and not runner.rollback_selection(phases):
        raise click.BadParameter(
            f"phase {VERIFY.label} leaves nothing behind: there is nothing to roll back.",
            param_hint="--phase",
        )
    if dry_run:
        if output == "json":
            click.echo(
                json.dumps(
                    [
                        {
                            "number": phase.number,
                            "name": phase.name,
                            "skipped": preview is None,
                            "deletes": preview.deletes if preview else [],
                            "keeps": [
                                {"what": what, "why": why}
                                for what, why in (preview.keeps if preview else [])
                            ],
                        }
                        for phase, preview in runner.rollback_preview(phases)
                    ],
                    indent=2,
                )
            )
        else:
            click.echo("Dry run: nothing is deleted. A rollback would go in this order:")
            for line in rollback_listing(runner, phases):
                click.echo(f"  {line}")
        return
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError(
                "rollback deletes objects and asks first; without a terminal to ask on, pass "
                "--yes (`--dry-run` lists what it would delete and keep)."
            )
        _confirm_rollback(runner, session, phases)
    # the phases named, else (--all) every phase: what the question listed
    run = (lambda: runner.rollback(phases)) if phases else runner.rollback_all
    _run_and_exit(renderer, run, runner, summary=True)


def _confirm_rollback(runner: Runner, session: Session, phases: tuple[str, ...]) -> None:
    where = session.kube.context or session.kube.server if session.kube else "the cluster"
    click.echo(f"Rollback on {where}, in this order:")
    for line in rollback_listing(runner, phases):
        click.echo(f"  {line}")
    click.confirm("Go ahead?", default=False, abort=True)


@install.command()
@_common
@click.pass_obj
def preflight(opts: Options, output: str) -> None:
    """Check what the install needs before it starts; exit 1 when something is missing.

    Cluster reachable, Argo Workflows and ArgoCD CRDs, the IngressClass (or Gateway), the wildcard
    TLS Secret, Keycloak's issuer. Writes nothing.
    """
    session = opts.session(required=False)
    checks = session.preflight()
    if output == "json":
        click.echo(
            json.dumps(
                [
                    {"check": c.name, "ok": c.ok, "detail": c.detail, "hint": c.hint}
                    for c in checks
                ],
                indent=2,
            )
        )
    else:
        console = _console()
        if session.plan_mode:
            console.print(f"[cyan]No cluster[/]: {session.why}")
        for c in checks:
            console.print(check_markup(c))
            if c.ok is False and c.hint:
                console.print(f"      [yellow]hint[/]  {c.hint}", markup=True, highlight=False)
    sys.exit(0 if all(c.ok for c in checks) else 1)


def _resolver(pins: tuple[str, ...]) -> Callable[[str], set[str]] | None:
    """Host names pinned to addresses (``--resolve HOST:ADDRESS``, as curl's); others use DNS."""
    if not pins:
        return None
    import ipaddress

    from thinkube_devpi.installer.e2e import system_resolve

    table: dict[str, set[str]] = {}
    for pin in pins:
        host, _, address = pin.partition(":")
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise click.BadParameter(
                f"{pin!r} is not HOST:ADDRESS (an IP address, e.g. devpi.example.com:10.0.0.5)",
                param_hint="--resolve",
            ) from None
        table.setdefault(host, set()).add(address)
    return lambda host: table[host] if host in table else system_resolve(host)


@install.command(name="test")
@click.option(
    "--timeout",
    type=WAIT_SECONDS,
    default=300,
    show_default=True,
    help="Seconds for the whole test.",
)
@click.option(
    "--resolve",
    multiple=True,
    metavar="HOST:ADDRESS",
    help="Use ADDRESS for HOST instead of DNS (repeatable, as curl's --resolve).",
)
@_common
@click.pass_obj
def test_install(opts: Options, timeout: float, resolve: tuple[str, ...], output: str) -> None:
    """Prove the install works through the real hosts (phase 88); exit 1 naming each failed check.

    \b
    Checks: both hosts resolve (to the ingress or gateway address); the dashboard without a session
    answers 302 to Keycloak sign-in and /oauth2/auth 401; the OIDC issuer matches; the API host's
    /+api answers without sign-in; anonymous user creation is refused; a probe package uploads to a
    scratch index and pip installs it back from that index alone (the index is deleted afterwards);
    tk-devpi whoami (and fish's devpi-whoami where installed) reach the API host.
    """
    session = opts.session(required=True).with_options(
        wait_timeout=timeout, resolve=_resolver(resolve)
    )
    renderer = EventPrinter(output)
    runner = session.runner(emit=renderer, journal=Journal())
    _run_and_exit(renderer, runner.verify, runner)


@install.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Folder to write one YAML file per phase into.",
)
@_phase_option
@click.pass_obj
def render(opts: Options, out_dir: Path, phases: tuple[str, ...]) -> None:
    """Write every object of the plan as YAML, one file per phase. Secrets without their data.

    Needs no cluster. Each Secret lists its keys and their sources in an annotation, so applying
    the files can never set a placeholder as a password.
    """
    import yaml

    from thinkube_devpi.installer.kube import with_common_labels

    settings = opts.settings()
    runner = Session(settings, why="render needs no cluster").runner()
    _validate_phases(runner, phases)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for plan in runner.plan(phases):
        if not plan.items:
            continue
        docs = [with_common_labels(item.manifest) for item in plan.items]
        path = out_dir / f"{plan.number:02d}-{plan.phase}.yaml"
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        written.append(path)
    for path in written:
        click.echo(str(path))
    if settings.is_placeholder:
        click.echo(
            f"note: rendered for the placeholder domain {settings.effective_domain}", err=True
        )


def _run_and_exit(
    renderer: EventPrinter, run: Callable[[], bool], runner: Runner, *, summary: bool = False
) -> NoReturn:
    """Run, render, and exit 0 when it went well, 1 when anything failed, 130 on Ctrl-C
    (saying which phase and step it stopped in; the journal records it too)."""
    try:
        ok = run()
    except KeyboardInterrupt:
        where = runner.interrupted()
        renderer.close()
        click.echo(
            f"Interrupted in {where}. Nothing was rolled back: a re-run picks up from there.",
            err=True,
        )
        sys.exit(130)
    finally:
        renderer.close()
    if summary:
        renderer.summary()
    sys.exit(0 if ok else 1)


class EventPrinter:
    """Renders runner events: text with rich (a spinner while waiting), or JSON lines."""

    def __init__(self, output: str) -> None:
        self.output = output
        self.console = _console()
        self._status: Any = None
        self.deleted: list[ObjectDeleted] = []

    def note(self, text: str) -> None:
        if self.output == "json":
            click.echo(json.dumps({"event": "Note", "text": text}))
        else:
            self.console.print(f"[cyan]{text}[/]")

    def close(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def summary(self) -> None:
        """What a rollback removed and what it kept, and why."""
        removed = [e for e in self.deleted if e.outcome == "deleted"]
        kept = [e for e in self.deleted if e.outcome == "kept"]
        if self.output == "json":
            click.echo(
                json.dumps(
                    {
                        "event": "Summary",
                        "removed": [str(e.ref) for e in removed],
                        "kept": [{"ref": str(e.ref), "why": e.reason} for e in kept],
                    }
                )
            )
            return
        c = self.console
        if not kept:
            c.print(f"\n[bold]Removed[/] {len(removed)} object(s); nothing kept.")
            return
        c.print(f"\n[bold]Removed[/] {len(removed)} object(s); [bold]kept[/] {len(kept)}:")
        for e in kept:
            c.print(f"   [cyan]kept[/]  {e.ref}: {e.reason}")
        if any(e.ref.kind == "PersistentVolumeClaim" for e in kept):
            c.print(
                "   [dim]to delete the package data too: tk-devpi install rollback "
                "--phase storage --delete-package-data=NAMESPACE[/]"
            )

    def __call__(self, event: Event) -> None:
        if isinstance(event, ObjectDeleted):
            self.deleted.append(event)
        if self.output == "json":
            click.echo(json.dumps(event_to_dict(event)))
            return
        if not isinstance(event, WaitingFor):
            self.close()
        c = self.console
        match event:
            case PhaseStarted(phase=phase, action=action, title=title):
                c.print(f"\n[bold]{phase}[/] {title} [dim]({action})[/]")
            case PhaseSkipped(reason=reason):
                c.print(f"   [green]skipped[/]  {reason}")
            case ObjectApplied(ref=ref, outcome=outcome) | ObjectDeleted(ref=ref, outcome=outcome):
                extra = (
                    f" [dim]({event.reason})[/]"
                    if isinstance(event, ObjectDeleted) and event.reason
                    else ""
                )
                c.print(f"   [{OUTCOME_STYLE.get(outcome, '')}]{outcome:>12}[/]  {ref}{extra}")
            case CheckDone(check=check):
                c.print("   " + check_markup(check))
            case LogLine(text=text, level=level):
                style = {"warning": "yellow", "error": "red", "debug": "dim"}.get(level, "")
                c.print(f"   [{style}]{text}[/]" if style else f"   {text}")
            case WaitingFor(what=what, timeout=timeout):
                if c.is_terminal:
                    self._status = c.status(f"waiting for {what} (up to {timeout:g}s)")
                    self._status.start()
                else:
                    c.print(f"   waiting for {what} (up to {timeout:g}s)")
            case PhaseFinished(ok=ok, state=state, message=message, hint=hint):
                if ok:
                    c.print(f"   [{STATE_STYLE[state]}]{state.value}[/]  {message}")
                else:
                    c.print(f"   [red bold]failed[/]  {message}")
                    if hint:
                        c.print(f"   [yellow]hint[/]  {hint}")
