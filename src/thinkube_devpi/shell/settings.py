"""Where the helpers find devpi: URL, user and index.

Precedence, highest first: command-line flags; devpi-client's own ``DEVPI_USER`` and ``DEVPI_INDEX``
(with devpi-client's meaning: ``DEVPI_INDEX`` is ``user/index`` or a full index URL); the helpers'
``helpers.toml`` under ``platformdirs.user_config_dir("thinkube-devpi")`` (installer phase 85 writes
it; ``THINKUBE_DEVPI_HELPERS_CONFIG`` may point elsewhere); then the defaults, user ``admin`` and
index ``admin/prod``. The URL has no default.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from thinkube_devpi import paths
from thinkube_devpi.errors import Error

CONFIG_ENV = paths.HELPERS_CONFIG_ENV
DEFAULT_USER = "admin"
DEFAULT_INDEX = "admin/prod"

_NAME = r"[A-Za-z0-9][A-Za-z0-9._@+-]*"
_USER_RE = re.compile(rf"^{_NAME}$")
_INDEX_RE = re.compile(rf"^{_NAME}/{_NAME}$")


class SettingsError(Error, ValueError):
    """A setting the helpers cannot use. The message names the value and what is allowed."""


@dataclass(frozen=True)
class HelperSettings:
    url: str | None  # root URL of the devpi API host, with a trailing slash
    user: str
    index: str  # "user/name": the index in use
    prod_index: str = DEFAULT_INDEX  # the configured prod index, what use-prod selects
    sources: tuple[tuple[str, str], ...] = ()  # (setting, where it came from)

    def require_url(self) -> str:
        if not self.url:
            raise SettingsError(
                "no devpi URL is configured: pass --url https://devpi-api.<domain>/ "
                "(login saves it), "
                f"or ask your admin to run the installer's phase 85, which writes {config_path()}"
            )
        return self.url

    @property
    def index_url(self) -> str:
        return f"{self.require_url()}{self.index}/"

    @property
    def simple_url(self) -> str:
        """The one index URL pip and uv use: devpi's simple page for the index."""
        return f"{self.require_url()}{self.index}/+simple/"

    def source_of(self, name: str) -> str:
        return dict(self.sources).get(name, "default")


def config_path() -> Path:
    """The helpers' settings file."""
    return paths.helpers_file()


def normalize_url(value: str) -> str:
    """A devpi root URL with a trailing slash; http or https with a host, nothing after the path."""
    text = value.strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        raise SettingsError(
            "the devpi URL is not a URL: give the devpi API host as https://host[:port]/"
        ) from None
    if "@" in parts.netloc:  # never repeat it: the part before "@" may be a password
        raise SettingsError(
            f"the URL for {parts.hostname} holds a user name or password (not shown): give the "
            "devpi URL without one; the password comes from the keyring or --password-stdin"
        )
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise SettingsError(
            f"URL {value!r} is not usable: give the devpi API host as http(s)://host[:port]/ "
            "(for example https://devpi-api.example.com/)"
        )
    if parts.query or parts.fragment:
        raise SettingsError(
            f"URL {value!r} is not usable: no user, password, query or fragment is allowed in it"
        )
    return text if text.endswith("/") else text + "/"


def validate_user(value: str) -> str:
    if not _USER_RE.fullmatch(value):
        raise SettingsError(
            f"user {value!r} is not a devpi user name: letters, digits and . _ @ + - are allowed, "
            "starting with a letter or digit"
        )
    return value


def validate_index(value: str) -> str:
    if not _INDEX_RE.fullmatch(value):
        raise SettingsError(
            f"index {value!r} is not a devpi index name: use USER/INDEX, for example admin/prod"
        )
    return value


def _split_index_url(value: str) -> tuple[str, str]:
    """'https://host/x/user/index/' -> ('https://host/x/', 'user/index')."""
    url = normalize_url(value)
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) < 2:
        raise SettingsError(
            f"DEVPI_INDEX {value!r} is a URL without USER/INDEX in its path "
            "(for example https://devpi-api.example.com/admin/prod)"
        )
    root_path = "/".join(segments[:-2])
    root = f"{parts.scheme}://{parts.netloc}/" + (root_path + "/" if root_path else "")
    return root, validate_index("/".join(segments[-2:]))


def read_helper_config(path: Path | None = None) -> dict[str, str]:
    """The helpers.toml settings (url, user, index) that are present; {} when there is no file."""
    import tomllib

    target = path or config_path()
    try:
        data = tomllib.loads(target.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{target} cannot be read: {exc}") from None
    keys = {"url", "user", "index", "selected_index"}
    return {k: str(v) for k, v in data.items() if k in keys and v}


def render_helper_config(
    url: str | None, user: str, index: str, selected_index: str | None = None
) -> str:
    lines = [
        "# thinkube-devpi helper settings: read by tk-devpi login/use-prod/upload/whoami",
        "# and the fish functions. No secret belongs here: passwords live in the keyring.",
    ]
    if url:
        lines.append(f"url = {json.dumps(normalize_url(url))}")
    lines.append(f"user = {json.dumps(validate_user(user))}")
    lines.append(f"index = {json.dumps(validate_index(index))}")
    if selected_index and selected_index != index:
        lines.append("# chosen with tk-devpi use; tk-devpi use-prod goes back to `index`")
        lines.append(f"selected_index = {json.dumps(validate_index(selected_index))}")
    return "\n".join(lines) + "\n"


def write_helper_config(
    url: str | None,
    user: str,
    index: str,
    path: Path | None = None,
    *,
    selected_index: str | None = None,
) -> Path:
    """Write helpers.toml (atomically, 0644: it holds no secret). Returns the path written.

    Installer phase 85 calls this with the API URL and the admin user and (prod) index.
    `selected_index` is the one `tk-devpi use` chose instead; `use-prod` clears it.
    """
    target = path or config_path()
    text = render_helper_config(url, user, index, selected_index)
    paths.atomic_write(target, text, mode=0o644)
    return target


def resolve(
    url: str | None = None, user: str | None = None, index: str | None = None
) -> HelperSettings:
    """Combine flags, devpi-client's environment, helpers.toml and defaults (in that order)."""
    sources: dict[str, str] = {}
    file_values = read_helper_config()
    path = str(config_path())

    env_url: str | None = None
    env_index: str | None = os.environ.get("DEVPI_INDEX") or None
    if env_index and "://" in env_index:
        env_url, env_index = _split_index_url(env_index)

    def pick(name: str, flag: str | None, env: str | None, env_name: str) -> str | None:
        if flag:
            sources[name] = f"--{name}"
            return flag
        if env:
            sources[name] = env_name
            return env
        if file_values.get(name):
            sources[name] = path
            return file_values[name]
        return None

    chosen_url = pick("url", url, env_url, "DEVPI_INDEX")
    chosen_user = pick("user", user, os.environ.get("DEVPI_USER") or None, "DEVPI_USER")
    if file_values.get("selected_index") and not file_values.get("index"):
        file_values["index"] = file_values["selected_index"]
    elif file_values.get("selected_index"):
        file_values["prod_index"] = file_values["index"]
        file_values["index"] = file_values["selected_index"]
    chosen_index = pick("index", index, env_index, "DEVPI_INDEX")
    prod = file_values.get("prod_index") or file_values.get("index") or DEFAULT_INDEX
    return HelperSettings(
        url=normalize_url(chosen_url) if chosen_url else None,
        user=validate_user(chosen_user or DEFAULT_USER),
        index=validate_index(chosen_index or DEFAULT_INDEX),
        prod_index=validate_index(prod),
        sources=tuple(sources.items()),
    )
