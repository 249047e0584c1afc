"""Uploading wheels and sdists with their full core metadata, streamed.

devpi stores only the metadata an upload sends, so every core metadata field pkginfo reads from the
file goes along (``requires_python`` among them: pip needs it on the simple page). The file
itself is read in chunks while it is sent, never whole.

The library behind `tk-devpi upload` and phase 88's probe upload: :func:`files` finds (or builds)
what to send, :func:`read_all` reads it, :class:`Uploader` sends it with a login it renews once if
the server voids it mid-run. Each file ends as a :class:`FileResult`; the faces only render them.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from thinkube_devpi.errors import Error
from thinkube_devpi.secrets import child_environ

if TYPE_CHECKING:
    from thinkube_devpi.shell.api import DevpiAPI
    from thinkube_devpi.shell.session import Login, Session

DIST_SUFFIXES = (".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz")


class UploadInputError(Error):
    """A path given to upload cannot be uploaded (missing, not a distribution)."""


@dataclass
class Distribution:
    path: Path
    name: str
    version: str
    filetype: str  # bdist_wheel | sdist
    pyversion: str
    size: int
    fields: list[tuple[str, str]]  # core metadata as form fields, repeated keys for lists

    @property
    def requires_python(self) -> str | None:
        return next((v for k, v in self.fields if k == "requires_python"), None)


def _kind(path: Path) -> tuple[str, str]:
    name = path.name
    if name.endswith(".whl"):
        parts = name[: -len(".whl")].split("-")
        if len(parts) < 5:
            raise UploadInputError(
                f"{path}: not a valid wheel file name (name-version-py-abi-platform.whl)"
            )
        return "bdist_wheel", parts[-3]
    if name.endswith(DIST_SUFFIXES):
        return "sdist", "source"
    raise UploadInputError(
        f"{path}: not a distribution; upload wheels (.whl) or sdists (.tar.gz, .zip)"
    )


def read_distribution(path: Path) -> Distribution:
    """Read a wheel's or sdist's core metadata with pkginfo."""
    if not path.exists():
        raise UploadInputError(f"{path}: no such file")
    if not path.is_file():
        raise UploadInputError(
            f"{path}: no wheel or sdist in this folder ({', '.join(DIST_SUFFIXES)}); build first "
            "(python -m build), or run tk-devpi upload without paths to build and upload"
        )
    filetype, pyversion = _kind(path)
    import pkginfo

    cls = pkginfo.Wheel if filetype == "bdist_wheel" else pkginfo.SDist
    try:
        meta = cls(str(path))
    except Exception as exc:  # zipfile.BadZipFile, tarfile.TarError, ValueError ...
        raise UploadInputError(
            f"{path}: not a readable distribution ({type(exc).__name__}: {exc})"
        ) from None
    if not meta.name or not meta.version:
        raise UploadInputError(f"{path}: no core metadata (name and version) found inside")
    fields: list[tuple[str, str]] = []
    for attr in meta:
        value = getattr(meta, attr, None)
        if value in (None, "", (), []):
            continue
        if isinstance(value, list | tuple):
            fields.extend((attr, str(v)) for v in value)
        else:
            fields.append((attr, str(value)))
    fields += [("filetype", filetype), ("pyversion", pyversion)]
    fields += [(":action", "file_upload"), ("protocol_version", "1")]
    return Distribution(
        path=path,
        name=str(meta.name),
        version=str(meta.version),
        filetype=filetype,
        pyversion=pyversion,
        size=path.stat().st_size,
        fields=fields,
    )


class ProgressReader(io.BufferedReader):
    """A file reader that reports how many bytes were read so far."""

    def __init__(self, path: Path, on_progress: Callable[[int], None]) -> None:
        super().__init__(io.FileIO(path, "rb"))
        self._on_progress = on_progress
        self._done = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self._done += len(chunk)
        self._on_progress(self._done)
        return chunk

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        pos = super().seek(offset, whence)
        self._done = pos
        return pos


def explain_status(
    status: int, dist: Distribution, index: str, url: str, user: str, server_msg: str
) -> str:
    """What a failed upload's status means and what to do."""
    target = f"{url}{index}/"
    if status == 401:
        return (
            f"{dist.path.name}: not logged in at {url}, or the login expired (401). "
            "Run tk-devpi login, then upload again."
        )
    if status == 403:
        return (
            f"{dist.path.name}: user {user!r} may not upload to {index} (403). Ask the index "
            f"owner to add {user!r} to the index's acl_upload, or upload to an index of your own "
            "(tk-devpi use USER/INDEX)."
        )
    if status == 404:
        return (
            f"{dist.path.name}: there is no index {index} at {url} (404). Check the name "
            "(tk-devpi whoami shows the configured one; tk-devpi use USER/INDEX selects another)."
        )
    if status == 409:
        return (
            f"{dist.path.name}: {dist.name} {dist.version} already has this file on {index}, "
            "which is not volatile (409). Released files cannot be replaced: raise the version "
            "and build again."
        )
    return f"{dist.path.name}: upload to {target} failed with {status} ({server_msg})."


def build_current_project(outdir: Path) -> list[Path]:
    """Build an sdist and a wheel of the project in the current directory with `python -m build`."""
    if not (Path("pyproject.toml").exists() or Path("setup.py").exists()):
        raise UploadInputError(
            f"no paths given and {Path.cwd()} has no pyproject.toml or setup.py to build; "
            "pass the files to upload (e.g. dist/*)"
        )
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(outdir), "."],
        env=child_environ(),
        stdout=sys.stderr,
        stderr=sys.stderr,
        check=False,
    )
    if proc.returncode != 0:
        raise UploadInputError(
            "building the project failed (python -m build); fix the build, or pass built files "
            "(pip install build if it is missing)"
        )
    return sorted(p for p in outdir.iterdir() if p.name.endswith(DIST_SUFFIXES))


def in_folder(path: Path) -> list[Path]:
    """A folder's wheels and sdists (not its subfolders), sorted; any other path as it is. A
    folder without any stays itself, so that reading it says so."""
    if not path.is_dir():
        return [path]
    found = sorted(f for f in path.iterdir() if f.is_file() and f.name.endswith(DIST_SUFFIXES))
    return found or [path]


@contextmanager
def files(paths: Sequence[str | Path]) -> Iterator[list[Path]]:
    """The files to upload: `paths`, a folder standing for the wheels and sdists in it (`dist/`,
    as a build leaves them), or, when none are given, a fresh build of the current project (in a
    temporary folder that is removed afterwards)."""
    if paths:
        yield [f for p in paths for f in in_folder(Path(p))]
        return
    with tempfile.TemporaryDirectory(prefix="tk-devpi-build-") as tmp:
        yield build_current_project(Path(tmp))


@dataclass(frozen=True)
class FileResult:
    """What became of one file: refused before sending, planned (dry run), sent, or failed."""

    path: Path
    ok: bool
    sent: bool = False
    dist: Distribution | None = None
    target: str = ""  # the index URL a dry run would send to
    status: int | None = None  # devpi's answer to the upload
    error: str = ""  # what went wrong and what to do

    def to_json(self) -> dict[str, Any]:
        d = self.dist
        if d is None:
            return {"path": str(self.path), "ok": False, "error": self.error}
        if not self.ok:
            return {"path": str(self.path), "ok": False, "status": self.status,
                    "error": self.error}  # fmt: skip
        if self.sent:
            return {"path": str(self.path), "name": d.name, "version": d.version, "ok": True,
                    "sent": True}  # fmt: skip
        return {"path": str(self.path), "name": d.name, "version": d.version, "size": d.size,
                "filetype": d.filetype, "requires_python": d.requires_python,
                "target": self.target, "ok": True, "sent": False}  # fmt: skip

    def describe(self) -> str:
        """One line a person reads; for a failure the error says it all."""
        d = self.dist
        if not self.ok or d is None:
            return self.error
        if self.sent:
            return f"uploaded {self.path.name} to {self.target}"
        return (
            f"would upload {self.path.name}: {d.name} {d.version} ({d.filetype}, {d.size} bytes, "
            f"requires-python {d.requires_python or 'any'}) to {self.target}"
        )


def read_all(paths: Iterable[Path]) -> tuple[list[Distribution], list[FileResult]]:
    """Every path read as a distribution, and a failed result for each one that is not."""
    dists: list[Distribution] = []
    refused: list[FileResult] = []
    for path in paths:
        try:
            dists.append(read_distribution(path))
        except UploadInputError as exc:
            refused.append(FileResult(path, ok=False, error=str(exc)))
    return dists, refused


def planned(dists: Iterable[Distribution], target: str) -> list[FileResult]:
    """What a dry run would send, and where."""
    return [FileResult(d.path, ok=True, dist=d, target=target) for d in dists]


Progress = Callable[[Distribution, int], None]


class Uploader:
    """Sends distributions to one index of `api`'s server as `login`'s user.

    The login is made valid (renewed from its password when expired or voided) before the first
    file. A 401 or 403 whose token the server no longer accepts (it lost its secret mid-run) renews
    the login once and sends that file again; any other refusal is explained in the result.
    Transport failures raise :class:`~thinkube_devpi.shell.api.DevpiError`.
    """

    def __init__(
        self,
        api: DevpiAPI,
        index: str,
        login: Login,
        *,
        session: Session | None = None,
        on_progress: Progress | None = None,
    ) -> None:
        self.api = api
        self.index = index
        self.login = login
        self.on_progress = on_progress
        self.session = session  # None: made valid before the first file

    @property
    def index_url(self) -> str:
        return f"{self.api.url}{self.index}/"

    def send_all(self, dists: Iterable[Distribution]) -> Iterator[FileResult]:
        for dist in dists:
            yield self.send(dist)

    def send(self, dist: Distribution) -> FileResult:
        if self.session is None:
            self.session = self.login.valid(self.api)

        def progress(done: int) -> None:
            if self.on_progress is not None:
                self.on_progress(dist, done)

        for attempt in (1, 2):
            with ProgressReader(dist.path, progress) as stream:
                resp = self.api.upload_file(
                    self.index, self.session, dist.fields, dist.path.name, stream
                )
            if (
                resp.status_code in (401, 403)
                and attempt == 1
                and self.api.auth_status(self.session) != "ok"
            ):
                # the token died between the check and the upload (server reset): renew once
                renewed = self.login.renew(self.api)
                if renewed is not None:
                    self.session = renewed
                    continue
            break
        if resp.status_code == 200:
            return FileResult(dist.path, ok=True, sent=True, dist=dist, target=self.index_url)
        server_msg = self.api.server_message(resp)  # a server may echo the request
        message = explain_status(
            resp.status_code, dist, self.index, self.api.url, self.login.user, server_msg
        )
        return FileResult(
            dist.path, ok=False, dist=dist, target=self.index_url, status=resp.status_code,
            error=message,
        )  # fmt: skip
