"""`tk-devpi backup now|list|verify|restore`: backups of the package data, headless.

Backups live in thinkube's object storage (settings ``backup_s3_*``; the access key pair from
THINKUBE_DEVPI_S3_ACCESS_KEY / THINKUBE_DEVPI_S3_SECRET_KEY, the keyring, or the cluster's Secret
``devpi-backup-s3``), or in a local directory given with ``--to`` / ``--from``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from thinkube_devpi.cli.install import EventPrinter, Options
from thinkube_devpi.installer.backup import core
from thinkube_devpi.installer.backup.schedule import human, size
from thinkube_devpi.installer.phases.base import Context, PhaseError
from thinkube_devpi.installer.phases.p75_backup import BackupPhase

_OUTPUT = click.option(
    "-o", "--output", type=click.Choice(["text", "json"]), default="text",
    help="Output format; json is for scripts.",
)  # fmt: skip


def _fail(exc: core.BackupError | PhaseError) -> click.ClickException:
    return click.ClickException(f"{exc.message} {exc.hint}".strip())


def _phase(opts: Options, *, cluster: bool) -> BackupPhase:
    session = opts.session(required=cluster)
    return BackupPhase(Context(session.settings, session.kube, wait_timeout=3600))


def _target(opts: Options, directory: Path | None) -> core.Target:
    if directory is not None:
        return core.LocalTarget(directory)
    try:
        return _phase(opts, cluster=False).target()
    except PhaseError as exc:
        raise _fail(exc) from None


def _emit(output: str, result: dict[str, Any], text: str) -> None:
    if output == "json":
        click.echo(json.dumps({"event": "Result", **result}))
    else:
        click.echo(text)


@click.group()
@click.option("--config", type=click.Path(path_type=Path), default=None,
              help="Settings file (default: the user config dir, or THINKUBE_DEVPI_CONFIG).")
@click.option("--kubeconfig", type=click.Path(path_type=Path), default=None, envvar="KUBECONFIG",
              help="kubeconfig file (default: KUBECONFIG, then ~/.kube/config).")
@click.option("--context", default=None, help="kubeconfig context (default: the current one).")
@click.pass_context
def backup(ctx: click.Context, config: Path | None, kubeconfig: Path | None, context: str | None) -> None:
    """Back up devpi's package data, list and verify backups, restore one.

    \b
    tk-devpi backup now                  a backup now, in the cluster (phase 75's program)
    tk-devpi backup now --to DIR         ... and a verified copy of it in DIR as well
    tk-devpi backup list                 the backups in the object storage, newest last
    tk-devpi backup verify ID            every byte of a backup checked against its manifest
    tk-devpi backup restore ID           replace the package data (saved as a backup first)
    """  # fmt: skip
    ctx.obj = Options(config, kubeconfig, context, "text")


@backup.command()
@click.option("--to", "to_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Also keep the backup in this local directory (copied and checked).")
@click.option("--serverdir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Back up this local devpi server directory instead of the cluster's.")
@click.option("--dry-run", is_flag=True, help="Say what would be backed up and where; write nothing.")
@_OUTPUT
@click.pass_obj
def now(opts: Options, to_dir: Path | None, serverdir: Path | None, dry_run: bool, output: str) -> None:
    """Back up now: devpi's whole state (users, indexes, ACLs, every release file).

    In the cluster a Job runs the backup beside the devpi pod, as the nightly CronJob does.
    With --serverdir, a devpi server directory on this machine is backed up (to --to DIR, or to the
    object storage).
    """  # fmt: skip
    if serverdir is not None:
        target = _target(opts, to_dir)
        if dry_run:
            _emit(output, {"dry_run": True, "source": str(serverdir), "target": target.describe()},
                  f"would back up {serverdir} to {target.describe()}")
            return
        try:
            m = core.backup(serverdir, target, serverdir.parent / ".backup-work",
                            log=lambda t: click.echo(t, err=True))
        except core.BackupError as exc:
            raise _fail(exc) from None
        _emit(output, {"id": m.id, "size": m.archive_size, "target": target.describe()},
              f"backup {m.id}: {size(m.archive_size)} in {target.describe()}")
        return
    phase = _phase(opts, cluster=not dry_run)
    if dry_run:
        where = f"{phase.settings.s3_endpoint} bucket {phase.settings.backup_s3_bucket}"
        also = f", then copied to {to_dir}" if to_dir else ""
        _emit(output, {"dry_run": True, "target": where, "copy_to": str(to_dir or "")},
              f"would run a backup Job in namespace {phase.settings.namespace} to {where}{also}")
        return
    printer = EventPrinter(output)
    try:
        from thinkube_devpi.installer.backup import cluster

        info = cluster.backup_now(phase, printer)
        copied = ""
        if to_dir is not None:
            core.copy_backup(phase.target(), core.LocalTarget(to_dir), info.id)
            copied = str(to_dir / info.id)
    except (core.BackupError, PhaseError) as exc:
        raise _fail(exc) from None
    finally:
        printer.close()
    _emit(output, {"id": info.id, "size": info.size, "copy": copied},
          f"backup {info.id}: {size(info.size)}" + (f"; copy in {copied}" if copied else ""))


@backup.command(name="list")
@click.option("--from", "from_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="List the backups in this local directory instead of the object storage.")
@_OUTPUT
@click.pass_obj
def list_(opts: Options, from_dir: Path | None, output: str) -> None:
    """The backups there are, oldest first; an interrupted one is marked incomplete."""
    target = _target(opts, from_dir)
    try:
        rows = target.list()
    except core.BackupError as exc:
        raise _fail(exc) from None
    if output == "json":
        click.echo(json.dumps([
            {"id": b.id, "created": b.created.isoformat(), "age_seconds": int(b.age().total_seconds()),
             "size": b.size, "complete": b.complete} for b in rows
        ]))  # fmt: skip
        return
    if not rows:
        click.echo(f"no backups in {target.describe()}")
        return
    click.echo(f"backups in {target.describe()}:")
    for b in rows:
        state = "" if b.complete else "  INCOMPLETE (interrupted; never restored)"
        click.echo(f"  {b.id}  {human(b.age()):>16} old  {size(b.size):>10}{state}")


@backup.command()
@click.argument("backup_id", metavar="ID")
@click.option("--from", "from_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Verify a backup in this local directory instead of the object storage.")
@_OUTPUT
@click.pass_obj
def verify(opts: Options, backup_id: str, from_dir: Path | None, output: str) -> None:
    """Read a whole backup and check every byte against its manifest (sizes and sha256)."""
    target = _target(opts, from_dir)
    try:
        m = core.verify(target, backup_id)
    except core.BackupCorrupt as exc:
        if output == "json":
            click.echo(json.dumps({"event": "Result", "id": backup_id, "ok": False, "problem": exc.message}))
            sys.exit(1)
        raise _fail(exc) from None
    except core.BackupError as exc:
        raise _fail(exc) from None
    _emit(output, {"id": m.id, "ok": True, "size": m.archive_size, "files": len(m.members),
                   "users": m.users, "indexes": m.indexes, "release_files": m.release_files},
          f"backup {m.id} is intact: {size(m.archive_size)}, {len(m.users)} users, "
          f"{len(m.indexes)} indexes, {m.release_files} release files")  # fmt: skip


@backup.command()
@click.argument("backup_id", metavar="ID")
@click.option("--confirm", default=None, metavar="NAMESPACE",
              help="The namespace name (or, with --serverdir, the server directory), typed as "
                   "confirmation that its package data is replaced.")
@click.option("--from", "from_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Restore from this local directory (with --serverdir).")
@click.option("--serverdir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Restore into this local server directory (devpi stopped) instead of the cluster.")
@click.option("--dry-run", is_flag=True, help="Say what would be replaced; change nothing.")
@_OUTPUT
@click.pass_obj
def restore(opts: Options, backup_id: str, confirm: str | None, from_dir: Path | None,
            serverdir: Path | None, dry_run: bool, output: str) -> None:  # fmt: skip
    """Replace devpi's package data with backup ID.

    The current data is saved as a new backup first, and the previous server directory is kept
    beside the restored one. In the cluster devpi is stopped meanwhile (Argo CD's self-heal is
    paused and turned on again). Asks for the namespace name, as a rollback of package data does.
    """
    try:
        core.check_id(backup_id)
    except core.BackupError as exc:
        raise _fail(exc) from None
    if from_dir is not None and serverdir is None:
        raise click.UsageError("--from restores into a local --serverdir only.")
    if serverdir is not None:
        target = _target(opts, from_dir)
        what = str(serverdir)
    else:
        phase = _phase(opts, cluster=not dry_run)
        what = phase.settings.namespace
    if dry_run:
        _emit(output, {"dry_run": True, "id": backup_id, "replaces": what},
              f"would save the package data of {what} as a backup, then replace it with backup {backup_id}")
        return
    if confirm is None and sys.stdin.isatty():
        confirm = click.prompt(
            f"This replaces the package data of {what} with backup {backup_id} (the current data is "
            f"saved as a backup first). Type {what!r} to go on", default="", show_default=False,
        )  # fmt: skip
    if confirm != what:
        raise click.ClickException(
            f"Not confirmed: a restore replaces the package data of {what}. "
            f"Pass --confirm={what} (or type it when asked)."
        )
    if serverdir is not None:
        work = serverdir.parent / ".backup-work"
        try:
            core.read_manifest(target, backup_id)
            saved = ""
            if core.has_data(serverdir):
                saved = core.backup(serverdir, target, work).id
            done = core.restore(target, backup_id, serverdir, work, log=lambda t: click.echo(t, err=True))
        except core.BackupError as exc:
            raise _fail(exc) from None
        _emit(output, {"id": backup_id, "saved_first": saved, "previous": str(done.previous or "")},
              f"restored backup {backup_id} into {serverdir}"
              + (f"; the data before was saved as backup {saved}" if saved else ""))  # fmt: skip
        return
    from thinkube_devpi.installer.backup import cluster

    printer = EventPrinter(output)
    try:
        cluster.restore(phase, printer, backup_id, confirm=confirm)
    except (core.BackupError, PhaseError) as exc:
        raise _fail(exc) from None
    finally:
        printer.close()
    _emit(output, {"id": backup_id, "namespace": what},
          f"restored backup {backup_id} in namespace {what}; check it with: tk-devpi install test")
