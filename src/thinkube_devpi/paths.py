"""Every directory and file the product reads or writes on this machine, and how it writes them.

Directories come from platformdirs (XDG on Linux) unless an environment override names them:

================================  ==========================================================
``THINKUBE_DEVPI_CONFIG``         the installer's settings file (default ``config.toml``)
``THINKUBE_DEVPI_HELPERS_CONFIG`` the helpers' settings file (default ``helpers.toml``)
``THINKUBE_DEVPI_STATE_DIR``      logins, the fish manifest, local phase state, run journals
``XDG_CONFIG_HOME``               where pip, uv and fish keep their configuration
================================  ==========================================================

:func:`atomic_write` is the one way a file of ours is replaced: a temporary file made with
``mkstemp`` in the target's own folder (so the rename cannot cross file systems, and ``O_EXCL``
means a planted symlink is never followed), the old file's mode kept, then ``os.replace``. A
target that is a symlink (dotfiles managed elsewhere) is written through: the link stays.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

APP_NAME = "thinkube-devpi"
ENV_PREFIX = "THINKUBE_DEVPI_"
CONFIG_ENV = f"{ENV_PREFIX}CONFIG"
HELPERS_CONFIG_ENV = f"{ENV_PREFIX}HELPERS_CONFIG"
STATE_ENV = f"{ENV_PREFIX}STATE_DIR"


def _override(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    """The product's own configuration folder."""
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_NAME))


def config_file() -> Path:
    """The installer's settings (``tk-devpi config init`` writes it)."""
    return _override(CONFIG_ENV) or config_dir() / "config.toml"


def helpers_file() -> Path:
    """The helpers' settings (installer phase 85 writes it, ``tk-devpi use`` edits it)."""
    return _override(HELPERS_CONFIG_ENV) or config_dir() / "helpers.toml"


def state_dir() -> Path:
    """Logins, the fish manifest, local phase state and run journals."""
    from platformdirs import user_state_dir

    return _override(STATE_ENV) or Path(user_state_dir(APP_NAME))


def runs_dir() -> Path:
    """One JSON-lines journal per installer run."""
    return state_dir() / "runs"


def cache_dir() -> Path:
    """What can be thrown away: the Kubernetes discovery cache."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir(APP_NAME))


def xdg_config_home() -> Path:
    """Where pip, uv and fish look for their configuration."""
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return Path(xdg) if xdg else Path.home() / ".config"


def fish_dir() -> Path:
    """fish's configuration folder (functions/, completions/)."""
    return xdg_config_home() / "fish"


def atomic_write(path: Path, text: str, *, mode: int | None = None) -> Path:
    """Replace ``path`` with ``text`` in one step; returns the file actually written.

    ``mode`` forces the file's permissions (0o600 for anything private); without it an existing
    file keeps its mode and a new one gets 0o644. A symlink at ``path`` is written through.
    """
    target = path.resolve() if path.is_symlink() else path
    target.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        try:
            mode = stat.S_IMODE(target.stat().st_mode)
        except FileNotFoundError:
            mode = 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return target
