"""pip.conf and uv.toml pointing at one devpi index, and nothing else.

A single index URL, never an extra index: devpi's ``root/pypi`` base already serves PyPI through
the index, and an extra index would let a higher version on PyPI shadow a private package
(dependency confusion). An ``extra-index-url`` already in pip.conf is removed, and said so.

Targets: ``user`` (pip: ``~/.config/pip/pip.conf``; uv: ``~/.config/uv/uv.toml``) or ``venv``
(pip: ``$VIRTUAL_ENV/pip.conf``; uv has no per-environment file, so uv.toml is left alone there
and `devpi-use-prod` sets ``UV_DEFAULT_INDEX`` in the shell instead). What a write replaces is kept
beside it as ``<name>.bak-<UTC time>``.
"""

from __future__ import annotations

import configparser
import io
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from thinkube_devpi import paths
from thinkube_devpi.errors import Error


class PipConfigError(Error):
    """pip or uv configuration cannot be written; the message names the file."""


@dataclass
class PlannedFile:
    path: Path
    content: str
    action: str  # create | replace | unchanged
    notes: list[str]

    def to_json(self) -> dict[str, object]:
        return {"path": str(self.path), "action": self.action, "notes": self.notes}


@dataclass
class WrittenFile:
    path: Path
    action: str  # created | replaced | unchanged
    backup: Path | None

    def to_json(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "action": self.action,
            "backup": str(self.backup) if self.backup else None,
        }


def _config_home() -> Path:
    return paths.xdg_config_home()


HEADER = "# written by tk-devpi pip-config: one index, the devpi index (no extra index)"


def pip_conf_path(target: str) -> Path:
    if target == "venv":
        venv = os.environ.get("VIRTUAL_ENV")
        if not venv:
            raise PipConfigError(
                "--target venv needs an active virtualenv (VIRTUAL_ENV is not set)"
            )
        root = Path(venv)
        if not (root / "pyvenv.cfg").is_file():
            raise PipConfigError(
                f"--target venv: VIRTUAL_ENV={venv!r} is not a virtualenv (no pyvenv.cfg in it); "
                "activate the virtualenv, or use --target user"
            )
        return root / "pip.conf"
    return _config_home() / "pip" / "pip.conf"


def uv_toml_path() -> Path:
    return _config_home() / "uv" / "uv.toml"


def render_pip_conf(simple_url: str, existing: str | None) -> tuple[str, list[str]]:
    parser = configparser.ConfigParser(interpolation=None)
    notes: list[str] = []
    if existing:
        try:
            parser.read_string(existing)
        except configparser.Error as exc:
            notes.append(
                f"the old file could not be parsed ({exc.__class__.__name__}); replaced whole"
            )
            parser = configparser.ConfigParser(interpolation=None)
    for section in parser.sections():
        for key in ("extra-index-url", "extra_index_url"):
            if parser.has_option(section, key):
                parser.remove_option(section, key)
                notes.append(
                    f"removed [{section}] {key}: an extra index invites dependency confusion "
                    "(devpi's root/pypi base already serves PyPI)"
                )
        for key in ("index-url", "index_url"):
            if section != "global" and parser.has_option(section, key):
                parser.remove_option(section, key)
                notes.append(f"removed [{section}] {key}: the index is set once in [global]")
    if not parser.has_section("global"):
        parser.add_section("global")
    parser.remove_option("global", "index_url")
    parser.set("global", "index-url", simple_url)
    out = io.StringIO()
    out.write(HEADER + "\n")
    parser.write(out)
    return out.getvalue().rstrip("\n") + "\n", notes


def render_uv_toml(simple_url: str, existing: str | None = None) -> tuple[str, list[str]]:
    """uv.toml with the devpi index as its one index, edited in place with tomlkit.

    The user's other settings and comments stay; other ``[[index]]`` tables and the legacy
    ``index-url``/``extra-index-url`` keys go (with a note each), as extra-index-url does in
    pip.conf. A file that does not parse is replaced whole (the backup keeps it).
    """
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    notes: list[str] = []
    doc = None
    if existing:
        try:
            doc = tomlkit.parse(existing)
        except TOMLKitError as exc:
            notes.append(f"the old file could not be parsed ({type(exc).__name__}); replaced whole")
    if doc is None:
        doc = tomlkit.document()
        doc.add(tomlkit.comment(HEADER.lstrip("# ")))
    for key in ("index-url", "extra-index-url"):
        if key in doc:
            del doc[key]
            notes.append(f"removed {key}: the index is set once, as [[index]] devpi")
    ours = tomlkit.table()
    ours.update({"name": "devpi", "url": simple_url, "default": True})
    kept = tomlkit.aot()
    for entry in doc.get("index", []):
        if entry.get("name") == "devpi":
            continue
        notes.append(
            f"removed [[index]] {entry.get('name') or entry.get('url')}: an extra index invites "
            "dependency confusion (devpi's root/pypi base already serves PyPI)"
        )
    kept.append(ours)
    if "index" in doc:
        del doc["index"]
    doc.append("index", kept)
    return tomlkit.dumps(doc), notes


def plan(
    simple_url: str, target: str = "user", pip: bool = True, uv: bool = True
) -> list[PlannedFile]:
    """What `write` would do, without writing."""
    if target not in {"user", "venv"}:
        raise PipConfigError(f"target {target!r} is not one of: user, venv")
    planned: list[PlannedFile] = []
    if pip:
        path = pip_conf_path(target)
        old = path.read_text(encoding="utf-8") if path.exists() else None
        content, notes = render_pip_conf(simple_url, old)
        planned.append(PlannedFile(path, content, _action(old, content), notes))
    if uv:
        if target == "venv":
            pass  # uv reads no per-environment file; see the module docstring
        else:
            path = uv_toml_path()
            old = path.read_text(encoding="utf-8") if path.exists() else None
            content, notes = render_uv_toml(simple_url, old)
            planned.append(PlannedFile(path, content, _action(old, content), notes))
    return planned


def _action(old: str | None, new: str) -> str:
    if old is None:
        return "create"
    return "unchanged" if old == new else "replace"


def write(
    planned: list[PlannedFile], before: Callable[[WrittenFile], None] | None = None
) -> list[WrittenFile]:
    """Write the planned files, keeping a backup of each one replaced (with its mode).

    ``before`` is told about each file (and its backup) before the file is replaced, so a caller
    that records what it wrote can record it first: a kill in between then loses nothing.
    """
    written: list[WrittenFile] = []
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for item in planned:
        if item.action == "unchanged":
            written.append(WrittenFile(item.path, "unchanged", None))
            continue
        backup = None
        item.path.parent.mkdir(parents=True, exist_ok=True)
        if item.path.exists():
            backup = item.path.with_name(f"{item.path.name}.bak-{stamp}")
            shutil.copy2(item.path, backup)  # keeps the mode: a 0600 pip.conf stays 0600
        entry = WrittenFile(item.path, "replaced" if backup else "created", backup)
        if before is not None:
            before(entry)
        paths.atomic_write(item.path, item.content)  # an existing file keeps its mode
        written.append(entry)
    return written


def undo(written: list[WrittenFile]) -> None:
    """Put back what `write` replaced, and remove what it created."""
    for item in written:
        if item.action == "replaced" and item.backup and item.backup.exists():
            os.replace(item.backup, item.path)
        elif item.action == "created":
            item.path.unlink(missing_ok=True)
