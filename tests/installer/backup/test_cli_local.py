"""`tk-devpi backup` on this machine: a devpi server directory backed up into a folder, listed,
verified, and restored only after the typed confirmation; retention as the admin reads it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from click.testing import CliRunner

from installer.backup.conftest import Team
from thinkube_devpi.cli import main
from thinkube_devpi.installer.backup import core


def tk(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), input=input)


def test_back_up_list_verify_and_restore_a_local_server_directory(small_team: Team, tmp_path: Path) -> None:
    server = small_team.server
    folder = tmp_path / "backups"
    r = tk("backup", "now", "--serverdir", str(server.serverdir), "--to", str(folder), "--dry-run")
    assert r.exit_code == 0 and "would back up" in r.output and not folder.exists()

    r = tk("backup", "now", "--serverdir", str(server.serverdir), "--to", str(folder), "-o", "json")
    assert r.exit_code == 0, r.output
    made = json.loads(r.output.strip().splitlines()[-1])["id"]

    listed = json.loads(tk("backup", "list", "--from", str(folder), "-o", "json").output)
    assert [(b["id"], b["complete"]) for b in listed] == [(made, True)] and listed[0]["size"] > 10_000

    r = tk("backup", "verify", made, "--from", str(folder))
    assert r.exit_code == 0 and f"backup {made} is intact" in r.output and "2 release files" in r.output

    server.stop()
    # no confirmation, or the wrong one: nothing happens
    r = tk("backup", "restore", made, "--from", str(folder), "--serverdir", str(server.serverdir))
    assert r.exit_code == 1 and f"Pass --confirm={server.serverdir}" in r.output
    r = tk("backup", "restore", made, "--from", str(folder), "--serverdir", str(server.serverdir), "--confirm", "devpi")
    assert r.exit_code == 1 and not list(server.base.glob("server.before-*"))

    r = tk("backup", "restore", made, "--from", str(folder), "--serverdir", str(server.serverdir),
           "--confirm", str(server.serverdir), "-o", "json")  # fmt: skip
    assert r.exit_code == 0, r.output
    result = json.loads(r.output.strip().splitlines()[-1])
    assert result["saved_first"] and Path(result["previous"]).is_dir()  # the data before: saved and kept
    assert len(core.complete_backups(core.LocalTarget(folder))) == 2
    server.start()


def test_corrupt_backup_makes_verify_exit_1(small_team: Team, tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    m = core.backup(small_team.server.serverdir, core.LocalTarget(folder), tmp_path / "w")
    archive = folder / m.id / core.ARCHIVE
    data = bytearray(archive.read_bytes())
    data[len(data) // 3] ^= 0xFF
    archive.write_bytes(bytes(data))
    r = tk("backup", "verify", m.id, "--from", str(folder), "-o", "json")
    assert r.exit_code == 1
    assert json.loads(r.output)["ok"] is False
    r = tk("backup", "verify", m.id, "--from", str(folder))
    assert r.exit_code == 1 and "does not match its manifest" in r.output


def test_bad_ids_are_refused_before_anything_runs(tmp_path: Path) -> None:
    r = tk("backup", "restore", "yesterday", "--from", str(tmp_path), "--serverdir", str(tmp_path / "s"))
    assert r.exit_code == 1 and "'yesterday' is not a backup id" in r.output


def test_retention_keeps_daily_weekly_and_the_last_day() -> None:
    now = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
    ids = [core.new_id(now - dt.timedelta(hours=h)) for h in range(0, 60 * 24, 6)]  # 60 days, 4 a day
    keep = core.to_keep(ids, keep_daily=7, keep_weekly=4, now=now)
    days = {core.id_time(i).date() for i in keep}
    assert len([i for i in keep if now - core.id_time(i) < dt.timedelta(hours=24)]) == 4  # the last day, all
    # 7 daily (Nov 28 - Dec 4); weekly, the newest of each of 4 ISO weeks: Dec 4 and Nov 29 are
    # daily ones already, Nov 22 and Nov 15 are added
    assert sorted(days) == [dt.date(2026, 11, 15), dt.date(2026, 11, 22)] + [
        dt.date(2026, 11, 28) + dt.timedelta(days=d) for d in range(7)
    ]
    assert max(ids) in keep and min(ids) not in keep


def test_a_second_backup_in_the_same_second_never_overwrites_the_first(
    small_team: Team, tmp_path: Path
) -> None:
    folder = core.LocalTarget(tmp_path / "backups")
    now = dt.datetime(2026, 12, 5, 8, 0, tzinfo=dt.UTC)
    first = core.backup(small_team.server.serverdir, folder, tmp_path / "w", now=now)
    second = core.backup(small_team.server.serverdir, folder, tmp_path / "w", now=now)
    assert first.id != second.id
    assert [b.id for b in core.complete_backups(folder)] == [first.id, second.id]
    core.check_archive(folder, first.id)  # the first is still whole
