"""What goes wrong with object storage, and what the admin sees: a clear error, no half backup
listed as complete, no corrupt backup restored, and never the secret key anywhere."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import httpx
import pytest
from botocore import exceptions as bex

from fakes.devpi_server import DevpiServer
from fakes.s3 import S3Server, _free_port
from installer.backup.conftest import Team, login
from leakcheck import assert_absent, files_under, process_argv
from shell.dists import make_wheel
from thinkube_devpi.installer.backup import core


def target_for(s3: S3Server, bucket: str, *, secret: str | None = None, endpoint: str = "") -> core.S3Target:
    cfg = core.S3Config(endpoint=endpoint or s3.endpoint, bucket=bucket, prefix=s3.prefix)
    return core.S3Target(cfg, core.Credentials(s3.access_key, secret or s3.secret_key))


@pytest.fixture
def server(small_team: Team) -> DevpiServer:
    return small_team.server


def test_object_storage_down(server: DevpiServer, s3_server: S3Server, bucket: str) -> None:
    target = target_for(s3_server, bucket, endpoint=f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(core.BackupError) as err:
        core.backup(server.serverdir, target, server.base / "work")
    assert "cannot reach http://127.0.0.1:" in err.value.message
    assert "backup_s3_endpoint" in err.value.hint
    assert not list((server.base / "work").glob("export-*"))  # checked before devpi-export ran


def test_wrong_credentials(server: DevpiServer, s3_server: S3Server, bucket: str, caplog: pytest.LogCaptureFixture) -> None:
    wrong = "wrong-" + s3_server.secret_key[::-1]
    target = target_for(s3_server, bucket, secret=wrong)
    caplog.set_level(logging.DEBUG)
    with process_argv() as argv, pytest.raises(core.BackupError) as err:
        core.backup(server.serverdir, target, server.base / "work")
    assert "refused the credentials" in err.value.message
    assert "THINKUBE_DEVPI_S3_SECRET_KEY" in err.value.hint
    for where, text in (("the error", str(err.value)), ("the log", caplog.text), ("argv", "\n".join(argv))):
        assert_absent(where, text, [wrong, s3_server.secret_key, s3_server.access_key])


def test_bucket_that_does_not_exist(server: DevpiServer, s3_server: S3Server) -> None:
    target = target_for(s3_server, "no-such-bucket-here")
    with pytest.raises(core.BackupError) as err:
        core.backup(server.serverdir, target, server.base / "work")
    assert "bucket no-such-bucket-here does not exist" in err.value.message


def test_interrupted_upload_is_never_listed_as_complete(
    server: DevpiServer, s3_server: S3Server, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = target_for(s3_server, bucket)
    target.part_size = 5 * 1024 * 1024
    # enough data for several parts, then the connection drops after the first part
    wheel = make_wheel(server.base, "tkbig", "1.0", padding=12 * 1024 * 1024)
    auth = login(server.url, "root", server.root_password)
    httpx.put(f"{server.url}root/big", json={"type": "stage", "bases": []}, headers=auth, timeout=10).raise_for_status()
    r = httpx.post(
        f"{server.url}root/big/",
        data={":action": "file_upload", "name": "tkbig", "version": "1.0"},
        files={"content": (wheel.name, wheel.read_bytes())},
        headers=auth,
        timeout=60,
    )
    assert r.status_code == 200, r.text

    real = target.client.upload_part
    calls = {"n": 0}

    def flaky(**kw):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] >= 2:
            raise bex.ConnectionClosedError(endpoint_url=s3_server.endpoint)
        return real(**kw)

    monkeypatch.setattr(target.client, "upload_part", flaky)
    with pytest.raises(core.BackupError) as err:
        core.backup(server.serverdir, target, server.base / "work")
    assert "stopped answering" in err.value.message
    assert core.complete_backups(target) == []
    assert target.list() == []  # the multipart upload was aborted: no object at all
    assert s3_server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert not list((server.base / "work").glob("export-*"))


def test_backup_cut_before_its_manifest_is_incomplete(server: DevpiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The process dies after the archive, before the manifest (a pod killed mid-backup)."""
    target = core.LocalTarget(tmp_path / "backups")
    real_put = target.put

    def die(key: str, data: bytes) -> None:
        raise KeyboardInterrupt  # stands for SIGKILL: nothing after this runs

    monkeypatch.setattr(target, "put", die)
    with pytest.raises(KeyboardInterrupt):
        core.backup(server.serverdir, target, server.base / "work")
    monkeypatch.setattr(target, "put", real_put)
    [listed] = target.list()
    assert not listed.complete and core.complete_backups(target) == []
    with pytest.raises(core.BackupCorrupt, match="incomplete"):
        core.verify(target, listed.id)


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "swap the manifest"])
def test_corrupt_backup_is_refused_by_verify_and_restore(
    server: DevpiServer, s3_server: S3Server, bucket: str, damage: str, tmp_path: Path
) -> None:
    target = target_for(s3_server, bucket)
    good = core.backup(server.serverdir, target, server.base / "work")
    key = f"{s3_server.prefix}{good.id}/{core.ARCHIVE}"
    client = s3_server.client()
    data = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    if damage == "flip a byte":
        # inside the last release file's bytes (after dataindex.json)
        data[len(data) // 2] ^= 0x01
        client.put_object(Bucket=bucket, Key=key, Body=bytes(data))
    elif damage == "truncate":
        client.put_object(Bucket=bucket, Key=key, Body=bytes(data[: len(data) // 2]))
    else:
        other = core.Manifest.from_json(
            client.get_object(Bucket=bucket, Key=f"{s3_server.prefix}{good.id}/{core.MANIFEST}")["Body"].read(), "x"
        )
        other.members[1].sha256 = "0" * 64
        client.put_object(Bucket=bucket, Key=f"{s3_server.prefix}{good.id}/{core.MANIFEST}", Body=other.to_json())

    with pytest.raises(core.BackupCorrupt) as err:
        core.verify(target, good.id)
    assert good.id in err.value.message or "damaged" in err.value.message

    before = sorted(p.relative_to(server.serverdir).as_posix() for p in server.serverdir.rglob("*"))
    server.stop()
    with pytest.raises(core.BackupCorrupt):
        core.restore(target, good.id, server.serverdir, server.base / "work")
    after = sorted(p.relative_to(server.serverdir).as_posix() for p in server.serverdir.rglob("*"))
    assert before == after  # the live directory was not touched
    assert not list(server.serverdir.parent.glob("server.restoring-*"))
    assert not list(server.serverdir.parent.glob("server.before-*"))
    server.start()


def test_a_backup_id_that_is_not_one(tmp_path: Path) -> None:
    target = core.LocalTarget(tmp_path)
    with pytest.raises(core.BackupError, match="'latest' is not a backup id"):
        core.verify(target, "latest")
    with pytest.raises(core.BackupError, match="There is no backup 20200101T000000Z"):
        core.verify(target, "20200101T000000Z")


def test_no_secret_in_the_backup_or_its_processes(
    server: DevpiServer, s3_server: S3Server, bucket: str, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """The S3 secret key travels only in signed requests: not in argv, logs, errors or data."""
    caplog.set_level(logging.DEBUG)
    target = target_for(s3_server, bucket)
    lines: list[str] = []
    with process_argv() as argv:
        m = core.backup(server.serverdir, target, server.base / "work", log=lines.append)
        core.verify(target, m.id)
        shutil.rmtree(tmp_path / "r", ignore_errors=True)
        core.restore(target, m.id, tmp_path / "r" / "server", tmp_path / "work")
    secrets = [s3_server.secret_key, s3_server.access_key]
    assert_absent("argv and environment of devpi-export/devpi-import", "\n".join(argv), secrets)
    assert_absent("the log", caplog.text + "\n".join(lines), secrets)
    assert_absent("the manifest", m.to_json(), secrets)
    assert_absent("repr of the target", repr(target.__dict__), secrets)
    for path, data in files_under(tmp_path / "r"):
        assert_absent(str(path), data, secrets)
