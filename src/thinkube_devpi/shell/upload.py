"""Uploading wheels and sdists with their full core metadata, streamed.

devpi stores only the metadata an upload sends, so every core metadata field pkginfo reads from the
file goes along (``requires_python`` among them: pip needs it on the simple page). The file
itself is read in chunks while it is sent, never whole.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from thinkube_devpi.errors import Error
from thinkube_devpi.secrets import child_environ

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
        raise UploadInputError(f"{path}: not a file; give wheel or sdist files (e.g. dist/*)")
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
