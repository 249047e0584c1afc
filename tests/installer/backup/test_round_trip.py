"""The story an admin trusts: back up a busy devpi, lose everything, restore, and nothing is missing.

A real devpi-server holds three users, four indexes (bases chained, upload ACLs, volatile and not)
and two projects in several versions as wheels and sdists. The backup runs while the server keeps
serving; the server directory is then wiped (what `rollback --all --delete-package-data` leaves);
the restore brings back the same users, indexes, ACLs and byte-identical release files, the users'
passwords still work, and pip resolves through the inherited bases.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import httpx

from fakes.devpi_server import DevpiServer
from installer.backup.conftest import Team, login, pip_install
from thinkube_devpi.installer.backup import core


def test_back_up_wipe_restore_gives_the_same_devpi(
    team: Team, s3_target: core.S3Target, tmp_path: Path
) -> None:
    server: DevpiServer = team.server
    before = team.snapshot()
    # 10 uploads, seen 32 times through the indexes' bases
    assert len(before["files"]) == 32 and before["indexes"]["bob/prod"]["bases"] == ["alice/dev"]

    manifest = core.backup(server.serverdir, s3_target, server.base / "work")
    assert not (server.base / "work" / f"export-{manifest.id}").exists()  # nothing left behind
    assert sorted(manifest.users) == ["alice", "bob", "carol", "root"]
    assert manifest.release_files == 10
    assert [b.id for b in core.complete_backups(s3_target)] == [manifest.id]
    assert core.verify(s3_target, manifest.id).archive_sha256 == manifest.archive_sha256

    # disaster: the server directory is gone
    server.stop()
    shutil.rmtree(server.serverdir)

    restored = core.restore(s3_target, manifest.id, server.serverdir, server.base / "work")
    assert restored.previous is None
    assert (server.serverdir / core.MARKER).exists()  # the entrypoint will accept it
    server.start()

    after = team.snapshot()
    assert after == before
    # passwords came back with the users
    login(server.url, "alice", team.passwords["alice"])
    site = tmp_path / "site"
    proc = pip_install(f"{server.url}bob/prod/+simple/", site, "tkfoo", "tkbar")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (site / "tkfoo" / "__init__.py").read_text() == 'VALUE = "2.0"\n'  # from alice/dev
    assert (site / "tkbar" / "__init__.py").read_text() == 'VALUE = "0.2"\n'


def test_restore_over_live_data_keeps_the_previous_directory(
    small_team: Team, tmp_path: Path
) -> None:
    """A restore into a running install: the current directory is kept aside, never deleted."""
    server = small_team.server
    target = core.LocalTarget(tmp_path / "backups")
    first = core.backup(server.serverdir, target, server.base / "work")
    # after the backup someone deletes an index
    auth = login(server.url, "root", server.root_password)
    httpx.delete(f"{server.url}alice/dev", headers=auth, timeout=10).raise_for_status()

    server.stop()
    restored = core.restore(target, first.id, server.serverdir, server.base / "work")
    server.start()
    assert restored.previous is not None and (restored.previous / ".sqlite").exists()
    assert httpx.get(f"{server.url}alice/dev", headers={"Accept": "application/json"}).status_code == 200


def test_a_backup_taken_during_uploads_is_one_consistent_state(
    small_team: Team, tmp_path: Path
) -> None:
    """Uploads keep coming while devpi-export reads: the archive holds whole releases only, each
    listed in dataindex.json with the bytes devpi recorded."""
    server = small_team.server
    auth = login(server.url, "root", server.root_password)
    stop = threading.Event()
    sent: list[str] = []

    def upload_loop() -> None:
        from shell.dists import make_wheel

        n = 0
        while not stop.is_set() and n < 40:
            n += 1
            wheel = make_wheel(tmp_path, "tkbusy", f"1.{n}")
            r = httpx.post(
                f"{server.url}alice/dev/",
                data={":action": "file_upload", "name": "tkbusy", "version": f"1.{n}"},
                files={"content": (wheel.name, wheel.read_bytes())},
                headers=auth,
                timeout=30,
            )
            if r.status_code == 200:
                sent.append(f"1.{n}")

    thread = threading.Thread(target=upload_loop)
    thread.start()
    try:
        target = core.LocalTarget(tmp_path / "backups")
        manifest = core.backup(server.serverdir, target, server.base / "work")
    finally:
        stop.set()
        thread.join()
    unpacked = tmp_path / "unpacked"
    core.check_archive(target, manifest.id, extract_to=unpacked)
    index = json.loads((unpacked / "dataindex.json").read_text())
    files = index["indexes"]["alice/dev"]["files"]
    for entry in files:
        path = unpacked / entry["relpath"]
        assert path.exists(), entry["relpath"]
        import hashlib

        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["entrymapping"]["hashes"]["sha256"]
    assert sent  # the loop did upload while the export ran
