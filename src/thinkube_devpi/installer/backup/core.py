"""Back up devpi's whole state to S3 or a directory, verify a backup, restore one.

This one file is also the backup program inside the cluster: the devpi image carries it as
``/opt/thinkube-devpi/devpi_backup.py`` and the phase-75 CronJob runs it beside the devpi pod.
So it imports only the standard library and boto3 (loaded on first use), and calls devpi's own
``devpi-export`` and ``devpi-import`` as programs. Never import ``thinkube_devpi`` here.

How a backup is made (DESIGN.md row 75; docs/admin-guide.md "Backup and restore"):

1. ``devpi-export --hard-links`` runs against the live server directory. devpi reads the whole
   state in one SQLite read transaction, so the export is one consistent serial even while devpi
   serves and takes uploads; release files are hard-linked into a work folder on the same volume
   (no copy, no extra space), and a link keeps a file's bytes even if devpi deletes the release
   meanwhile.
2. The export folder is streamed as an uncompressed tar (wheels and sdists are compressed
   already) straight into an S3 multipart upload, one part buffer at a time: memory stays flat
   whatever the data size. Every member's size and sha256 are taken on the way.
3. Only then is ``manifest.json`` written beside the archive, with the archive's size and sha256,
   every member's, and the users and indexes. A backup without a manifest is incomplete and is
   never listed as a backup (an interrupted multipart upload leaves no object at all: it is
   aborted, or never completed).

A restore verifies every byte against the manifest while it unpacks, and refuses a corrupt
backup before anything is changed; it imports into a new server directory beside the live one
and swaps the two, keeping the previous directory aside.

One thing, so one module past 500 lines: the backup program, kept in one file because it is
copied into the devpi image as it is.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, Protocol

FORMAT = "thinkube-devpi-backup/1"
ARCHIVE = "export.tar"
MANIFEST = "manifest.json"
MARKER = ".thinkube-devpi"  # the entrypoint's mark on a server directory it created
PART_SIZE = 8 * 1024 * 1024  # S3 multipart part (5 MiB is the minimum)
ID_RE = re.compile(r"^\d{8}T\d{6}Z$")
ROOT_PASSWORD_ENV = "DEVPISERVER_ROOT_PASSWD"  # devpi's own variable, from Secret devpi-root
ACCESS_KEY_ENV = "THINKUBE_DEVPI_S3_ACCESS_KEY"
SECRET_KEY_ENV = "THINKUBE_DEVPI_S3_SECRET_KEY"
# every variable a child process must not inherit (it would show in /proc/<pid>/environ)
_SECRET_VARIABLE = re.compile(r"PASSW|SECRET|TOKEN|ACCESS_KEY|CREDENTIAL|_AUTH\b|PRIVATE")


class BackupError(Exception):
    """A backup, verify or restore cannot go on. ``hint`` says what the admin can do.

    Messages never carry a credential: S3 errors are reduced to their code and message."""

    def __init__(self, message: str, hint: str = "") -> None:
        self.message = message
        self.hint = hint
        super().__init__(message + (f" {hint}" if hint else ""))


class BackupCorrupt(BackupError):
    """A backup's bytes do not match its manifest (or it has none): verify and restore refuse it."""


# ---------------------------------------------------------------- identifiers and manifests


def new_id(now: dt.datetime | None = None) -> str:
    """A backup's id: its UTC start time, ``YYYYMMDDTHHMMSSZ`` (sorts by age)."""
    now = now or dt.datetime.now(dt.UTC)
    return now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def id_time(backup_id: str) -> dt.datetime:
    return dt.datetime.strptime(backup_id, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)


def check_id(backup_id: str) -> str:
    if not ID_RE.match(backup_id):
        raise BackupError(
            f"{backup_id!r} is not a backup id.",
            "A backup id is its UTC start time such as 20261204T030000Z; "
            "`tk-devpi backup list` shows them.",
        )
    return backup_id


@dataclass
class Member:
    path: str
    size: int
    sha256: str


@dataclass
class Manifest:
    id: str
    created: str
    archive_size: int
    archive_sha256: str
    members: list[Member]
    users: list[str] = field(default_factory=list)
    indexes: list[str] = field(default_factory=list)
    release_files: int = 0
    devpi_server: str = ""
    format: str = FORMAT

    @property
    def data_bytes(self) -> int:
        return sum(m.size for m in self.members)

    def to_json(self) -> bytes:
        doc = dataclasses.asdict(self)
        return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> Manifest:
        try:
            doc = json.loads(data)
            if doc.get("format") != FORMAT:
                raise ValueError(f"format {doc.get('format')!r}, expected {FORMAT}")
            doc["members"] = [Member(**m) for m in doc["members"]]
            return cls(**doc)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise BackupCorrupt(
                f"The manifest of {where} is unreadable ({exc}).",
                "This backup cannot be trusted; use another one.",
            ) from None


@dataclass
class BackupInfo:
    """One backup as a target lists it. ``complete``: its manifest exists."""

    id: str
    size: int
    complete: bool

    @property
    def created(self) -> dt.datetime:
        return id_time(self.id)

    def age(self, now: dt.datetime | None = None) -> dt.timedelta:
        return (now or dt.datetime.now(dt.UTC)) - self.created


# ---------------------------------------------------------------- targets


class Target(Protocol):
    """Where backups live: an S3 bucket and prefix, or a local directory."""

    def describe(self) -> str: ...

    def upload(self, key: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        """A writable stream; the object exists only if the block ends without an error."""
        ...

    def read(self, key: str) -> contextlib.AbstractContextManager[IO[bytes]]: ...

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes | None: ...

    def list(self) -> list[BackupInfo]: ...

    def delete(self, backup_id: str) -> None: ...

    def check(self) -> None:
        """Raise BackupError when the target cannot be written (before any export runs)."""
        ...


class LocalTarget:
    """Backups as ``DIR/<id>/export.tar`` and ``DIR/<id>/manifest.json``.

    An archive is written as ``export.tar.partial`` and renamed when complete."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def describe(self) -> str:
        return str(self.root)

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackupError(f"Cannot create {self.root}: {exc.strerror}.") from None
        if not os.access(self.root, os.W_OK):
            raise BackupError(f"{self.root} is not writable.")

    @contextlib.contextmanager
    def upload(self, key: str) -> Iterator[IO[bytes]]:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        with partial.open("wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        partial.replace(path)

    @contextlib.contextmanager
    def read(self, key: str) -> Iterator[IO[bytes]]:
        path = self.root / key
        if not path.is_file():
            raise BackupCorrupt(f"{path} is missing.", "This backup is incomplete; use another one.")
        with path.open("rb") as fh:
            yield fh

    def put(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".partial")
        tmp.write_bytes(data)
        tmp.replace(path)

    def get(self, key: str) -> bytes | None:
        path = self.root / key
        return path.read_bytes() if path.is_file() else None

    def list(self) -> list[BackupInfo]:
        out: list[BackupInfo] = []
        if not self.root.is_dir():
            return out
        for child in sorted(self.root.iterdir()):
            if not (child.is_dir() and ID_RE.match(child.name)):
                continue
            archive = child / ARCHIVE
            size = archive.stat().st_size if archive.is_file() else 0
            complete = archive.is_file() and (child / MANIFEST).is_file()
            out.append(BackupInfo(child.name, size, complete))
        return out

    def delete(self, backup_id: str) -> None:
        shutil.rmtree(self.root / check_id(backup_id), ignore_errors=True)


@dataclass
class S3Config:
    endpoint: str  # https://s3.<domain>, or http://127.0.0.1:PORT in tests
    bucket: str
    prefix: str = "devpi/"
    region: str = "us-east-1"
    ca_file: str | None = None


class Credentials:
    """An S3 access key pair. ``repr`` and ``str`` never show the secret key."""

    __slots__ = ("_secret_key", "access_key")

    def __init__(self, access_key: str, secret_key: str) -> None:
        self.access_key = access_key
        self._secret_key = secret_key

    def secret_key(self) -> str:
        return self._secret_key

    def __repr__(self) -> str:
        return "Credentials(<hidden>)"

    __str__ = __repr__

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Credentials:
        env = dict(os.environ) if env is None else env
        access, secret = env.get(ACCESS_KEY_ENV, ""), env.get(SECRET_KEY_ENV, "")
        if not (access and secret):
            missing = ACCESS_KEY_ENV if not access else SECRET_KEY_ENV
            raise BackupError(
                f"{missing} is not set.",
                "The backup needs the object storage's access key pair "
                f"({ACCESS_KEY_ENV} and {SECRET_KEY_ENV}).",
            )
        return cls(access, secret)


CHECK_BUCKET = "Checking the bucket"


def s3_error(exc: BaseException, what: str, cfg: S3Config) -> BackupError:
    """A boto3/botocore failure as a BackupError that names no credential."""
    from botocore import exceptions as bex

    where = f"{cfg.endpoint} bucket {cfg.bucket}"
    if isinstance(exc, bex.ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", "?"))
        message = str(err.get("Message", "")).strip()
        if code == "NoSuchBucket" or (code == "404" and what == CHECK_BUCKET):
            return BackupError(
                f"{what}: bucket {cfg.bucket} does not exist at {cfg.endpoint}.",
                "Create it (weed shell: s3.bucket.create -name BUCKET) or set backup_s3_bucket.",
            )
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
            return BackupError(
                f"{what}: {where} refused the credentials ({code}).",
                f"Check the access key pair ({ACCESS_KEY_ENV}, {SECRET_KEY_ENV}) and that it may "
                "write the bucket.",
            )
        return BackupError(f"{what}: {where} answered {code}{': ' + message if message else ''}.")
    if isinstance(exc, bex.EndpointConnectionError | bex.ConnectTimeoutError):
        return BackupError(
            f"{what}: cannot reach {cfg.endpoint}.",
            "Check that the object storage is up and its address (backup_s3_endpoint).",
        )
    if isinstance(exc, bex.ReadTimeoutError | bex.ConnectionClosedError):
        return BackupError(f"{what}: {cfg.endpoint} stopped answering ({type(exc).__name__}).")
    if isinstance(exc, bex.BotoCoreError):
        return BackupError(f"{what}: {type(exc).__name__} talking to {cfg.endpoint}.")
    return BackupError(f"{what}: {type(exc).__name__} talking to {cfg.endpoint}.")


class _MultipartWriter(io.RawIOBase):
    """A write-only stream that uploads each full part as soon as it is filled.

    Memory: one part buffer. ``finish`` completes the upload; ``abort`` discards every part."""

    def __init__(self, client: Any, bucket: str, key: str, part_size: int) -> None:
        super().__init__()
        self.client, self.bucket, self.key, self.part_size = client, bucket, key, part_size
        self.buffer = bytearray()
        self.parts: list[dict[str, Any]] = []
        self.upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.buffer += view
        while len(self.buffer) >= self.part_size:
            chunk = bytes(self.buffer[: self.part_size])
            del self.buffer[: self.part_size]
            self._send(chunk)
        return len(view)

    def _send(self, chunk: bytes) -> None:
        number = len(self.parts) + 1
        answer = self.client.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=chunk
        )
        self.parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    def finish(self) -> None:
        if self.buffer or not self.parts:
            self._send(bytes(self.buffer))
            self.buffer.clear()
        self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": self.parts},
        )

    def abort(self) -> None:
        self.buffer.clear()
        with contextlib.suppress(Exception):
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id
            )


class S3Target:
    """Backups as ``s3://<bucket>/<prefix><id>/export.tar`` and ``.../manifest.json``."""

    def __init__(
        self, cfg: S3Config, credentials: Credentials, *, part_size: int = PART_SIZE
    ) -> None:
        self.cfg = cfg
        self.part_size = part_size
        self._credentials = credentials
        self._client: Any = None

    def describe(self) -> str:
        return f"s3 {self.cfg.endpoint} bucket {self.cfg.bucket} prefix {self.cfg.prefix!r}"

    @property
    def client(self) -> Any:
        if self._client is None:
            import logging

            # botocore logs every request's headers at DEBUG, the access key id among them: keep
            # it quiet whatever the root logger's level is
            for name in ("boto3", "botocore", "s3transfer", "urllib3"):
                logging.getLogger(name).setLevel(logging.WARNING)
            import boto3
            from botocore.config import Config

            self._client = boto3.session.Session().client(
                "s3",
                endpoint_url=self.cfg.endpoint,
                region_name=self.cfg.region,
                aws_access_key_id=self._credentials.access_key,
                aws_secret_access_key=self._credentials.secret_key(),
                verify=self.cfg.ca_file or True,
                config=Config(
                    s3={"addressing_style": "path"},  # SeaweedFS serves buckets as paths
                    connect_timeout=5,
                    read_timeout=120,
                    # a status read of an unreachable endpoint gives up after ~10 s
                    retries={"total_max_attempts": 2, "mode": "standard"},
                    # SeaweedFS and other S3 servers do not all know the newer CRC checksums
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                ),
            )
        return self._client

    def _key(self, key: str) -> str:
        return f"{self.cfg.prefix}{key}"

    def _call(self, what: str, fn: Callable[..., Any], **kw: Any) -> Any:
        try:
            return fn(**kw)
        except BackupError:
            raise
        except Exception as exc:
            raise s3_error(exc, what, self.cfg) from None

    def check(self) -> None:
        self._call(CHECK_BUCKET, self.client.head_bucket, Bucket=self.cfg.bucket)

    @contextlib.contextmanager
    def upload(self, key: str) -> Iterator[IO[bytes]]:
        writer = self._call(
            f"Starting the upload of {key}",
            _MultipartWriter,
            client=self.client,
            bucket=self.cfg.bucket,
            key=self._key(key),
            part_size=self.part_size,
        )
        try:
            yield writer  # type: ignore[misc]
            self._call(f"Finishing the upload of {key}", writer.finish)
        except BaseException as exc:
            writer.abort()
            if isinstance(exc, BackupError | KeyboardInterrupt | SystemExit):
                raise
            raise s3_error(exc, f"Uploading {key}", self.cfg) from None

    @contextlib.contextmanager
    def read(self, key: str) -> Iterator[IO[bytes]]:
        from botocore import exceptions as bex

        try:
            answer = self.client.get_object(Bucket=self.cfg.bucket, Key=self._key(key))
        except bex.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise BackupCorrupt(
                    f"{self._key(key)} is missing from bucket {self.cfg.bucket}.",
                    "This backup is incomplete; use another one.",
                ) from None
            raise s3_error(exc, f"Reading {key}", self.cfg) from None
        except Exception as exc:
            raise s3_error(exc, f"Reading {key}", self.cfg) from None
        body = answer["Body"]
        try:
            yield body
        finally:
            body.close()

    def put(self, key: str, data: bytes) -> None:
        self._call(
            f"Writing {key}",
            self.client.put_object,
            Bucket=self.cfg.bucket,
            Key=self._key(key),
            Body=data,
        )

    def get(self, key: str) -> bytes | None:
        from botocore import exceptions as bex

        try:
            answer = self.client.get_object(Bucket=self.cfg.bucket, Key=self._key(key))
            return bytes(answer["Body"].read())
        except bex.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise s3_error(exc, f"Reading {key}", self.cfg) from None
        except Exception as exc:
            raise s3_error(exc, f"Reading {key}", self.cfg) from None

    def _objects(self) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.cfg.bucket, Prefix=self.cfg.prefix):
                yield from page.get("Contents", [])
        except Exception as exc:
            raise s3_error(exc, "Listing the backups", self.cfg) from None

    def list(self) -> list[BackupInfo]:
        sizes: dict[str, int] = {}
        manifests: set[str] = set()
        for obj in self._objects():
            rest = str(obj["Key"])[len(self.cfg.prefix) :]
            backup_id, _, name = rest.partition("/")
            if not ID_RE.match(backup_id):
                continue
            if name == ARCHIVE:
                sizes[backup_id] = int(obj.get("Size", 0))
            elif name == MANIFEST:
                manifests.add(backup_id)
        ids = sorted(set(sizes) | manifests)
        return [BackupInfo(i, sizes.get(i, 0), i in sizes and i in manifests) for i in ids]

    def delete(self, backup_id: str) -> None:
        check_id(backup_id)
        for name in (MANIFEST, ARCHIVE):  # the manifest first: never a manifest without data
            self._call(
                f"Deleting {backup_id}/{name}",
                self.client.delete_object,
                Bucket=self.cfg.bucket,
                Key=self._key(f"{backup_id}/{name}"),
            )


# ---------------------------------------------------------------- hashing streams


class _HashingReader(io.RawIOBase):
    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__()
        self.raw = raw
        self.sha = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.sha.update(data)
        self.size += len(data)
        return data

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


class _HashingWriter(io.RawIOBase):
    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__()
        self.raw = raw
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.raw.write(view)
        self.sha.update(view)
        self.size += len(view)
        return len(view)


# ---------------------------------------------------------------- export and backup


def child_environ() -> dict[str, str]:
    """devpi's programs get the environment without any secret-holding variable."""
    return {k: v for k, v in os.environ.items() if not _SECRET_VARIABLE.search(k.upper())}


def _program(name: str) -> str:
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise BackupError(f"{name} is not installed here.", "It comes with devpi-server.")
    return found


def _run(argv: list[str], what: str) -> None:
    proc = subprocess.run(
        argv,
        env=child_environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
        start_new_session=True,
    )
    if proc.returncode != 0:
        tail = " | ".join(line for line in proc.stdout.splitlines()[-5:] if line.strip())
        raise BackupError(f"{what} failed (exit {proc.returncode}): {tail or 'no output'}")


def export_state(serverdir: Path, dest: Path) -> None:
    """devpi's own export of the live server directory into ``dest`` (must not exist).

    Hard links when ``dest`` is on the server directory's filesystem: no copy of the data."""
    if not (serverdir / ".nodeinfo").is_file():
        raise BackupError(
            f"{serverdir} holds no devpi-server data.", "Check the server directory path."
        )
    argv = [_program("devpi-export"), "--serverdir", str(serverdir)]
    dest.parent.mkdir(parents=True, exist_ok=True)
    if os.stat(dest.parent).st_dev == os.stat(serverdir).st_dev:
        argv.append("--hard-links")
    _run([*argv, str(dest)], "devpi-export")


def _walk(root: Path) -> list[Path]:
    """Every file under ``root``, dataindex.json first, then by path (a stable order)."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    files.sort(key=lambda p: (p.relative_to(root).as_posix() != "dataindex.json",))
    return files


def stream_tar(root: Path, out: IO[bytes]) -> tuple[list[Member], int, str]:
    """Write ``root``'s files as a tar stream to ``out``; (members, archive size, archive sha)."""
    sink = _HashingWriter(out)
    members: list[Member] = []
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
        for path in _walk(root):
            rel = path.relative_to(root).as_posix()
            st = path.stat()
            info = tarfile.TarInfo(rel)
            info.size = st.st_size
            info.mtime = int(st.st_mtime)
            info.mode = 0o644
            with path.open("rb") as fh:
                reader = _HashingReader(fh)
                tar.addfile(info, reader)
            if reader.size != st.st_size:
                raise BackupError(f"{rel} changed size while it was read.")
            members.append(Member(rel, reader.size, reader.sha.hexdigest()))
    return members, sink.size, sink.sha.hexdigest()


def _summary(root: Path) -> dict[str, Any]:
    data = json.loads((root / "dataindex.json").read_text())
    indexes = data.get("indexes", {})
    return {
        "users": sorted(data.get("users", {})),
        "indexes": sorted(indexes),
        "release_files": sum(
            1
            for ix in indexes.values()
            for f in ix.get("files", [])
            if f.get("type") == "releasefile"
        ),
        "devpi_server": str(data.get("devpi_server", "")),
    }


Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def backup(
    serverdir: Path,
    target: Target,
    work: Path,
    *,
    now: dt.datetime | None = None,
    log: Log = _quiet,
) -> Manifest:
    """Export the live server directory and stream it to ``target``; the manifest comes last."""
    target.check()
    # ids have second resolution: a second backup within the same second (restore saves the data
    # first) takes the next free second rather than overwrite the backup already there
    taken = {b.id for b in target.list()}
    moment = now or dt.datetime.now(dt.UTC)
    backup_id = new_id(moment)
    while backup_id in taken:
        moment += dt.timedelta(seconds=1)
        backup_id = new_id(moment)
    scratch = work / f"export-{backup_id}"
    if scratch.exists():
        shutil.rmtree(scratch)
    started = time.monotonic()
    try:
        log(f"exporting {serverdir} (devpi-export, one consistent read)")
        export_state(serverdir, scratch)
        summary = _summary(scratch)
        log(
            f"exported {len(summary['users'])} users, {len(summary['indexes'])} indexes, "
            f"{summary['release_files']} release files; streaming to {target.describe()}"
        )
        with target.upload(f"{backup_id}/{ARCHIVE}") as out:
            members, size, sha = stream_tar(scratch, out)
        manifest = Manifest(
            id=backup_id,
            created=id_time(backup_id).isoformat(),
            archive_size=size,
            archive_sha256=sha,
            members=members,
            **summary,
        )
        target.put(f"{backup_id}/{MANIFEST}", manifest.to_json())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log(
        f"backup {backup_id} complete: {size} bytes, {len(members)} files, "
        f"{time.monotonic() - started:.1f} s"
    )
    return manifest


# ---------------------------------------------------------------- list, retention, verify


def complete_backups(target: Target) -> list[BackupInfo]:
    """Complete backups, oldest first."""
    return [b for b in target.list() if b.complete]


def newest(target: Target) -> BackupInfo | None:
    done = complete_backups(target)
    return done[-1] if done else None


def to_keep(
    ids: Iterable[str], keep_daily: int, keep_weekly: int, now: dt.datetime | None = None
) -> set[str]:
    """The newest backup of each of the last ``keep_daily`` days that have one, of each of the
    last ``keep_weekly`` ISO weeks that have one, and every backup of the last 24 hours (a fresh
    install after a loss backs up its empty devpi: the backups from before stay)."""
    now = now or dt.datetime.now(dt.UTC)
    ordered = sorted(ids, reverse=True)
    keep: set[str] = {i for i in ordered if now - id_time(i) < dt.timedelta(hours=24)}
    keep.update(ordered[:1])
    days: dict[dt.date, str] = {}
    weeks: dict[tuple[int, int], str] = {}
    for backup_id in ordered:
        t = id_time(backup_id)
        days.setdefault(t.date(), backup_id)
        iso = t.isocalendar()
        weeks.setdefault((iso[0], iso[1]), backup_id)
    keep.update(list(days.values())[:keep_daily])
    keep.update(list(weeks.values())[:keep_weekly])
    return keep


def prune(target: Target, keep_daily: int, keep_weekly: int, *, log: Log = _quiet) -> list[str]:
    """Delete complete backups that retention does not keep; returns their ids."""
    done = [b.id for b in complete_backups(target)]
    keep = to_keep(done, keep_daily, keep_weekly)
    gone = [i for i in done if i not in keep]
    for backup_id in gone:
        target.delete(backup_id)
        log(f"retention: deleted backup {backup_id}")
    return gone


def read_manifest(target: Target, backup_id: str) -> Manifest:
    check_id(backup_id)
    data = target.get(f"{backup_id}/{MANIFEST}")
    if data is None:
        known = [b.id for b in target.list()]
        if backup_id in known:
            raise BackupCorrupt(
                f"Backup {backup_id} is incomplete (no manifest): it was interrupted.",
                "Use another backup; `tk-devpi backup list` shows the complete ones.",
            )
        raise BackupError(
            f"There is no backup {backup_id} in {target.describe()}.",
            "`tk-devpi backup list` shows the backups there are.",
        )
    return Manifest.from_json(data, f"backup {backup_id}")


def _safe_member(name: str) -> str:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise BackupCorrupt(f"The archive holds an unsafe path {name!r}.", "Use another backup.")
    return path.as_posix()


def check_archive(
    target: Target, backup_id: str, *, extract_to: Path | None = None
) -> Manifest:
    """Read the whole archive once: every member and the archive itself must match the manifest,
    and every release file dataindex.json names must be there with devpi's own sha256.
    With ``extract_to`` the members are written there too (for a restore)."""
    manifest = read_manifest(target, backup_id)
    expected = {m.path: m for m in manifest.members}
    seen: dict[str, Member] = {}
    problems: list[str] = []
    with target.read(f"{backup_id}/{ARCHIVE}") as raw:
        reader = _HashingReader(raw)
        try:
            with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
                for info in tar:
                    if not info.isfile():
                        problems.append(f"{info.name}: not a regular file")
                        continue
                    name = _safe_member(info.name)
                    src = tar.extractfile(info)
                    assert src is not None
                    sha = hashlib.sha256()
                    size = 0
                    dest = None
                    if extract_to is not None:
                        target_path = extract_to / name
                        target_path.parent.mkdir(parents=True, exist_ok=True)
                        dest = target_path.open("wb")
                    try:
                        while chunk := src.read(1024 * 1024):
                            sha.update(chunk)
                            size += len(chunk)
                            if dest is not None:
                                dest.write(chunk)
                    finally:
                        if dest is not None:
                            dest.close()
                    seen[name] = Member(name, size, sha.hexdigest())
            while reader.read(1024 * 1024):  # the tar end padding counts in the archive's hash
                pass
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise BackupCorrupt(
                f"The archive of backup {backup_id} is damaged ({exc}).", "Use another backup."
            ) from None
    if reader.size != manifest.archive_size or reader.sha.hexdigest() != manifest.archive_sha256:
        problems.append(
            f"archive: {reader.size} bytes sha256 {reader.sha.hexdigest()[:12]}, manifest says "
            f"{manifest.archive_size} bytes sha256 {manifest.archive_sha256[:12]}"
        )
    for name, want in expected.items():
        got = seen.get(name)
        if got is None:
            problems.append(f"{name}: missing")
        elif (got.size, got.sha256) != (want.size, want.sha256):
            problems.append(f"{name}: sha256 {got.sha256[:12]}, manifest says {want.sha256[:12]}")
    problems += [f"{name}: not in the manifest" for name in seen if name not in expected]
    if not problems and extract_to is None:
        pass
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise BackupCorrupt(
            f"Backup {backup_id} does not match its manifest: {shown}.",
            "It cannot be trusted; use another backup.",
        )
    return manifest


def verify(target: Target, backup_id: str) -> Manifest:
    """Raise :class:`BackupCorrupt` unless every byte of the backup matches its manifest."""
    return check_archive(target, backup_id)


def copy_backup(source: Target, dest: Target, backup_id: str) -> Manifest:
    """Copy one backup (streamed) to another target, checking the archive's sha256 on the way;
    the manifest is written last, so an interrupted copy is never complete."""
    manifest = read_manifest(source, backup_id)
    with source.read(f"{backup_id}/{ARCHIVE}") as raw, dest.upload(f"{backup_id}/{ARCHIVE}") as out:
        sink = _HashingWriter(out)
        shutil.copyfileobj(raw, sink, 1024 * 1024)
        if (sink.size, sink.sha.hexdigest()) != (manifest.archive_size, manifest.archive_sha256):
            raise BackupCorrupt(
                f"Backup {backup_id} in {source.describe()} does not match its manifest "
                f"({sink.size} bytes read, {manifest.archive_size} expected).",
                "It cannot be trusted; use another backup.",
            )
    dest.put(f"{backup_id}/{MANIFEST}", manifest.to_json())
    return manifest


# ---------------------------------------------------------------- restore


@dataclass
class Restored:
    id: str
    serverdir: Path
    previous: Path | None  # the directory that was live before, kept aside
    manifest: Manifest


def restore(
    target: Target,
    backup_id: str,
    serverdir: Path,
    work: Path,
    *,
    root_password: str | None = None,
    log: Log = _quiet,
) -> Restored:
    """Verify while unpacking, import into a new server directory beside ``serverdir``, then swap.

    devpi must not be running on ``serverdir`` during the swap (the caller stops it). The directory
    that was live is renamed ``<name>.before-<id>``, never deleted. With ``root_password`` root
    gets that password (the install's Secret ``devpi-root``, which a fresh install after a loss
    generated anew); every other user keeps the password the backup holds."""
    check_id(backup_id)
    unpacked = work / f"restore-{backup_id}"
    fresh = serverdir.with_name(f"{serverdir.name}.restoring-{backup_id}")
    serverdir.parent.mkdir(parents=True, exist_ok=True)
    for path in (unpacked, fresh):
        if path.exists():
            shutil.rmtree(path)
    unpacked.mkdir(parents=True)
    try:
        log(f"reading and checking backup {backup_id} from {target.describe()}")
        manifest = check_archive(target, backup_id, extract_to=unpacked)
        log(
            f"backup {backup_id} matches its manifest ({manifest.archive_size} bytes); "
            "importing into a new server directory"
        )
        if root_password:
            set_root_password(unpacked / "dataindex.json", root_password)
        argv = [_program("devpi-import"), "--serverdir", str(fresh), "--no-root-pypi"]
        if os.stat(unpacked).st_dev == os.stat(fresh.parent).st_dev:
            argv.append("--hard-links")
        _run([*argv, str(unpacked)], "devpi-import")
        (fresh / MARKER).touch()
        previous = None
        if serverdir.exists():
            previous = serverdir.with_name(f"{serverdir.name}.before-{backup_id}")
            if previous.exists():
                previous = previous.with_name(f"{previous.name}-{new_id()}")
            serverdir.rename(previous)
            log(f"the previous server directory is kept as {previous}")
        fresh.rename(serverdir)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)
    log(f"restored backup {backup_id} into {serverdir}")
    return Restored(backup_id, serverdir, previous, manifest)


def set_root_password(dataindex: Path, password: str) -> None:
    """Give root ``password`` in an unpacked export, hashed as devpi-server hashes it."""
    from devpi_server.auth import hash_password  # the image's devpi-server (a test dependency here)

    data = json.loads(dataindex.read_text())
    root = data.get("users", {}).get("root")
    if root is None:
        return
    root["pwhash"] = hash_password(password)
    root.pop("pwsalt", None)
    dataindex.write_text(json.dumps(data))


def has_data(serverdir: Path) -> bool:
    """True when ``serverdir`` is an initialised devpi server directory."""
    return (serverdir / ".nodeinfo").is_file()


# ---------------------------------------------------------------- the program in the pod


def target_from_env(env: dict[str, str] | None = None) -> Target:
    env = dict(os.environ) if env is None else env
    if env.get("BACKUP_DIR"):
        return LocalTarget(Path(env["BACKUP_DIR"]))
    endpoint, bucket = env.get("BACKUP_S3_ENDPOINT", ""), env.get("BACKUP_S3_BUCKET", "")
    if not (endpoint and bucket):
        raise BackupError("BACKUP_S3_ENDPOINT and BACKUP_S3_BUCKET (or BACKUP_DIR) must be set.")
    cfg = S3Config(
        endpoint=endpoint,
        bucket=bucket,
        prefix=env.get("BACKUP_S3_PREFIX", "devpi/"),
        region=env.get("BACKUP_S3_REGION", "us-east-1"),
        ca_file=env.get("BACKUP_S3_CA_FILE") or None,
    )
    return S3Target(cfg, Credentials.from_env(env))


def main(argv: list[str] | None = None, env: dict[str, str] | None = None) -> int:
    """``devpi_backup.py backup|verify ID|restore ID`` in a pod (target from the environment)."""
    parser = argparse.ArgumentParser(prog="devpi_backup.py", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("backup", help="export devpi and stream it to the target")
    v = sub.add_parser("verify", help="check a backup against its manifest")
    r = sub.add_parser(
        "restore", help="back up the current data, then restore a backup (devpi stopped)"
    )
    for p in (b, r):
        p.add_argument("--serverdir", type=Path, default=Path("/data/server"))
        p.add_argument("--work", type=Path, default=Path("/data/.backup-work"))
    b.add_argument("--keep-daily", type=int, default=7)
    b.add_argument("--keep-weekly", type=int, default=4)
    for p in (v, r):
        p.add_argument("id")
    args = parser.parse_args(argv)

    def log(text: str) -> None:
        print(f"devpi-backup: {text}", flush=True)

    try:
        target = target_from_env(env)
        if args.command == "backup":
            manifest = backup(args.serverdir, target, args.work, log=log)
            prune(target, args.keep_daily, args.keep_weekly, log=log)
            print(json.dumps({"id": manifest.id, "size": manifest.archive_size}), flush=True)
        elif args.command == "verify":
            manifest = verify(target, args.id)
            log(f"backup {manifest.id} matches its manifest")
        else:
            check_id(args.id)
            read_manifest(target, args.id)  # refuse an unknown or incomplete backup first
            if has_data(args.serverdir):
                before = backup(args.serverdir, target, args.work, log=log)
                log(f"the current data is saved first as backup {before.id}")
            root_password = (env if env is not None else os.environ).get(ROOT_PASSWORD_ENV)
            done = restore(
                target, args.id, args.serverdir, args.work, root_password=root_password, log=log
            )
            print(json.dumps({"restored": done.id, "previous": str(done.previous or "")}), flush=True)
    except BackupError as exc:
        print(f"devpi-backup: error: {exc.message} {exc.hint}".rstrip(), file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
