"""The daily helper commands: `tk-devpi login|logout|whoami|env|use|use-prod|upload|pip-config`.

Imports stay inside the commands: `whoami` must start faster than `devpi use`, so it pays only for
click, the settings and `http.client`. httpx, keyring, pkginfo and devpi-client load only in the
commands that need them.

One thing, so one module past 500 lines: one click command per helper; what they do is in shell/.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import click

from thinkube_devpi.shell import settings as settings_mod

if TYPE_CHECKING:
    from thinkube_devpi.secrets import Secret
    from thinkube_devpi.shell.api import DevpiAPI
    from thinkube_devpi.shell.upload import Distribution, FileResult

F = TypeVar("F", bound=Callable[..., Any])
CONTEXT = {"help_option_names": ["-h", "--help"]}


def _where(func: F) -> F:
    func = click.option("--index", metavar="USER/INDEX", help="devpi index (default: admin/prod).")(
        func
    )
    func = click.option(
        "--user", metavar="USER", help="devpi user (default: admin, or DEVPI_USER)."
    )(func)
    func = click.option(
        "--url", metavar="URL", help="devpi API root URL, e.g. https://devpi-api.example.com/."
    )(func)
    func = click.option(
        "--insecure-http",
        is_flag=True,
        envvar="THINKUBE_DEVPI_INSECURE_HTTP",
        expose_value=False,
        callback=lambda ctx, _p, value: ctx.meta.__setitem__("insecure_http", bool(value)),
        help="Send the password or token over plain http to a host that is not this machine "
        "(refused otherwise; only on a network you trust).",
    )(func)
    return func


def _api(root: str) -> DevpiAPI:
    from thinkube_devpi.shell.api import DevpiAPI

    ctx = click.get_current_context(silent=True)
    insecure = bool(ctx and ctx.meta.get("insecure_http"))
    return DevpiAPI(root, insecure_http=insecure)


def _plaintext_flag(func: F) -> F:
    return click.option(
        "--allow-plaintext-keyring",
        is_flag=True,
        help="Accept a keyring backend that keeps secrets in a plain file (priority below 1). "
        "Same as THINKUBE_DEVPI_ALLOW_PLAINTEXT_KEYRING=1.",
    )(func)


def _output(*choices: str) -> Callable[[F], F]:
    return click.option(
        "-o",
        "--output",
        type=click.Choice(choices),
        default=choices[0],
        show_default=True,
        help="Output format; json is for scripts.",
    )


def _err(message: str) -> None:
    click.echo(message, err=True)


# ---------------------------------------------------------------------------------------- login


@click.command(context_settings=CONTEXT)
@_where
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input (one line), e.g. from a CI secret.",
)
@click.option(
    "--no-keyring", is_flag=True, help="Do not keep the password in the keyring (no renewal)."
)
@_plaintext_flag
@click.option("--no-devpi-client", is_flag=True, help="Leave devpi-client's login alone.")
def login(
    url: str | None,
    user: str | None,
    index: str | None,
    password_stdin: bool,
    no_keyring: bool,
    allow_plaintext_keyring: bool,
    no_devpi_client: bool,
) -> None:
    """Log in to devpi and keep the password in the system keyring.

    The password comes from --password-stdin when given, else from the keyring, else from a prompt.
    It is never accepted on the command line. devpi-client is logged in too (in this process), so
    plain `devpi` commands work afterwards. --url/--user given here are saved for later commands.
    """
    from thinkube_devpi import secrets
    from thinkube_devpi.shell import session as sessions

    cfg = settings_mod.resolve(url, user, index)
    root = cfg.require_url()
    key = sessions.password_key(root, cfg.user)
    sessions.check()  # a corrupt sessions.json stops here, before a password is sent anywhere

    backend_note = None
    keyring_ok = False
    if not no_keyring:
        try:
            backend = secrets.keyring_backend(allow_plaintext_keyring)
            backend_note = secrets.backend_description(backend)
            keyring_ok = True
        except secrets.SecretError as exc:
            _err(f"warning: the password will not be kept: {exc}")

    password: Secret | None
    if password_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        password = secrets.Secret(line, "stdin") if line else None
        if password is None:
            raise click.ClickException("--password-stdin: standard input held no password")
    else:
        password = secrets.lookup(
            key,
            interactive=sys.stdin.isatty(),
            allow_plaintext=allow_plaintext_keyring,
            prompt=f"devpi password for {cfg.user} at {root}: ",
        )
        if password is None:
            raise click.ClickException(
                f"no password for {cfg.user!r} at {root}: none in the keyring and no terminal "
                "to ask on; pipe it in with --password-stdin"
            )

    with _api(root) as api:
        new = api.login(cfg.user, password)
    sessions.save(new)
    click.echo(f"logged in as {cfg.user} at {root}")

    if keyring_ok and password.source != "keyring":
        where = secrets.store(key, password, allow_plaintext=allow_plaintext_keyring)
        click.echo(f"password kept in the keyring: {where}")
    elif keyring_ok:
        click.echo(f"password read from the keyring: {backend_note}")

    if url or user:
        file_values = settings_mod.read_helper_config()
        settings_mod.write_helper_config(
            root,
            cfg.user,
            file_values.get("index", cfg.prod_index),
            selected_index=file_values.get("selected_index"),
        )

    if not no_devpi_client:
        _devpi_client_login(cfg, password)


def _devpi_client_login(cfg: settings_mod.HelperSettings, password: Secret) -> None:
    from thinkube_devpi.shell import client

    result = client.use(cfg.index_url)
    if not result.ok:
        result = client.use(cfg.require_url())
    if result.ok:
        result = client.login(cfg.user, password)
    if result.ok:
        click.echo("devpi-client logged in too (plain `devpi` commands work now)")
    else:
        last = result.output.strip().splitlines()[-1:] or ["no output"]
        _err(f"warning: devpi-client could not be logged in: {last[0]}")


# --------------------------------------------------------------------------------------- logout


@click.command(context_settings=CONTEXT)
@_where
@click.option("--keep-password", is_flag=True, help="Keep the password in the keyring.")
def logout(url: str | None, user: str | None, index: str | None, keep_password: bool) -> None:
    """Forget the login: the token, the keyring password and devpi-client's login."""
    from thinkube_devpi import secrets
    from thinkube_devpi.shell import client
    from thinkube_devpi.shell import session as sessions

    cfg = settings_mod.resolve(url, user, index)
    root = cfg.require_url()
    dropped = sessions.drop(root, cfg.user)
    forgotten = False
    if not keep_password:
        forgotten = secrets.forget(sessions.password_key(root, cfg.user))
    client_result = client.logoff()
    click.echo(
        f"logged out {cfg.user} at {root}: token {'removed' if dropped else 'none'}, "
        "keyring password "
        f"{'removed' if forgotten else 'kept' if keep_password else 'none'}, devpi-client "
        f"{'logged off' if client_result.ok else 'was not logged in'}"
    )


# ------------------------------------------------------------------------------- whoami and env


def _state(cfg: settings_mod.HelperSettings) -> dict[str, Any]:
    from thinkube_devpi.shell import session as sessions
    from thinkube_devpi.shell.probe import probe

    root = cfg.require_url()
    current = sessions.load(root, cfg.user)
    server = probe(root, current, cfg.index)
    return {
        "url": root,
        "user": cfg.user,
        "index": cfg.index,
        "index_url": cfg.index_url,
        "simple_url": cfg.simple_url,
        "login": server.login,
        "login_expires": int(current.expires) if current else None,
        "server_reachable": server.reachable,
        "server_error": server.error,
        "index_exists": server.index_exists,
        "versions": {
            "tk-devpi": _version("thinkube-devpi"),
            "devpi-client": _version("devpi-client"),
            "devpi-server": server.server_version,
        },
        "sources": {name: cfg.source_of(name) for name in ("url", "user", "index")},
    }


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


@click.command(context_settings=CONTEXT)
@_where
@_output("text", "json")
def whoami(url: str | None, user: str | None, index: str | None, output: str) -> None:
    """Show URL, user, index, whether the login is valid and the server reachable, and versions.

    Exit status 1 when the server cannot be reached.
    """
    cfg = settings_mod.resolve(url, user, index)
    state = _state(cfg)
    if output == "json":
        click.echo(json.dumps(state, indent=2))
    else:
        login_text = {
            "valid": "valid",
            "expired": "expired (tk-devpi renews it from the keyring, or run tk-devpi login)",
            "invalid": "no longer accepted by the server (run tk-devpi login)",
            "none": "not logged in (run tk-devpi login)",
        }[state["login"]]
        if not state["server_reachable"]:
            login_text = "unknown (server not reachable)"
        index_text = {True: "", False: "  (does not exist on the server)", None: ""}[
            state["index_exists"]
        ]
        v = state["versions"]
        lines = [
            f"url:     {state['url']}  (from {state['sources']['url']})",
            f"user:    {state['user']}  (from {state['sources']['user']})",
            f"index:   {state['index']}{index_text}  (from {state['sources']['index']})",
            f"login:   {login_text}",
            "server:  "
            + (
                "reachable"
                if state["server_reachable"]
                else f"NOT reachable: {state['server_error']}"
            ),
            f"versions: tk-devpi {v['tk-devpi']}, devpi-client {v['devpi-client']}, "
            f"devpi-server {v['devpi-server'] or 'unknown'}",
        ]
        click.echo("\n".join(lines))
    if not state["server_reachable"]:
        sys.exit(1)


def _env_values(cfg: settings_mod.HelperSettings) -> dict[str, str]:
    return {
        "DEVPI_URL": cfg.require_url(),
        "DEVPI_USER": cfg.user,
        "DEVPI_INDEX": cfg.index,
        "DEVPI_INDEX_URL": cfg.index_url,
        "PIP_INDEX_URL": cfg.simple_url,
        "UV_DEFAULT_INDEX": cfg.simple_url,
    }


def _sh_quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


def _fish_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@click.command(context_settings=CONTEXT)
@_where
@_output("text", "sh", "fish", "json")
@click.option(
    "--get", "get", metavar="NAME", help="Print only this variable's value, e.g. PIP_INDEX_URL."
)
def env(url: str | None, user: str | None, index: str | None, output: str, get: str | None) -> None:
    """Print the helper settings as shell lines (`-o sh`, `-o fish`) or JSON.

    Works offline: nothing is asked of the server (tk-devpi whoami does that).
    """
    cfg = settings_mod.resolve(url, user, index)
    values = _env_values(cfg)
    if get:
        if get not in values:
            raise click.ClickException(f"--get {get!r}: not one of {', '.join(values)}")
        click.echo(values[get])
        return
    if output == "json":
        click.echo(json.dumps(values, indent=2))
    elif output == "sh":
        click.echo("\n".join(f"export {k}={_sh_quote(v)}" for k, v in values.items()))
    elif output == "fish":
        click.echo("\n".join(f"set -gx {k} {_fish_quote(v)}" for k, v in values.items()))
    else:
        click.echo("\n".join(f"{k}={_sh_quote(v)}" for k, v in values.items()))


# -------------------------------------------------------------------------------- use, use-prod


def _select(
    cfg: settings_mod.HelperSettings,
    target: str,
    dry_run: bool,
    output: str,
    print_simple_url: bool,
) -> None:
    from thinkube_devpi.shell import client

    root = cfg.require_url()
    with _api(root) as api:
        config = api.index_config(target)
        if config is None:
            owner = target.split("/")[0]
            known = api.user_indexes(owner)
            hint = (
                f"indexes of {owner}: {', '.join(known)}"
                if known
                else f"user {owner!r} has no index there"
            )
            raise click.ClickException(f"there is no index {target} at {root} ({hint})")
    chosen = settings_mod.HelperSettings(
        url=root, user=cfg.user, index=target, prod_index=cfg.prod_index
    )
    path = settings_mod.config_path()
    result = {
        "index": target,
        "index_url": chosen.index_url,
        "simple_url": chosen.simple_url,
        "helpers_config": str(path),
        "dry_run": dry_run,
        "devpi_client": None,
    }
    if not dry_run:
        settings_mod.write_helper_config(
            root,
            cfg.user,
            cfg.prod_index,
            selected_index=target if target != cfg.prod_index else None,
        )
        result["devpi_client"] = client.use(chosen.index_url).ok
    if print_simple_url:
        click.echo(chosen.simple_url)
        return
    if output == "json":
        click.echo(json.dumps(result, indent=2))
        return
    verb = "would select" if dry_run else "selected"
    click.echo(
        f"{verb} {target} ({chosen.index_url}) for the helpers"
        + ("" if dry_run else " and devpi-client")
    )
    if result["devpi_client"] is False:
        _err(
            "warning: devpi-client could not be switched (run: devpi use " + chosen.index_url + ")"
        )
    click.echo(
        f"pip/uv index: {chosen.simple_url}  (tk-devpi pip-config writes it to pip.conf/uv.toml)"
    )


@click.command(context_settings=CONTEXT)
@click.argument("index_name", metavar="USER/INDEX")
@click.option("--url", metavar="URL", help="devpi API root URL.")
@click.option("--user", metavar="USER", help="devpi user.")
@click.option(
    "--dry-run", is_flag=True, help="Check the index and say what would change; write nothing."
)
@click.option(
    "--print-simple-url", is_flag=True, help="Print only the index's simple URL (for scripts)."
)
@_output("text", "json")
def use(
    index_name: str,
    url: str | None,
    user: str | None,
    dry_run: bool,
    print_simple_url: bool,
    output: str,
) -> None:
    """Select USER/INDEX for the helpers and for devpi-client (it must exist on the server)."""
    target = settings_mod.validate_index(index_name)
    cfg = settings_mod.resolve(url, user, None)
    _select(cfg, target, dry_run, output, print_simple_url)


@click.command(context_settings=CONTEXT)
@_where
@click.option(
    "--dry-run", is_flag=True, help="Check the index and say what would change; write nothing."
)
@click.option(
    "--print-simple-url", is_flag=True, help="Print only the index's simple URL (for scripts)."
)
@_output("text", "json")
def use_prod(
    url: str | None,
    user: str | None,
    index: str | None,
    dry_run: bool,
    print_simple_url: bool,
    output: str,
) -> None:
    """Select the prod index (admin/prod unless configured otherwise) everywhere."""
    cfg = settings_mod.resolve(url, user, None)
    target = settings_mod.validate_index(index) if index else cfg.prod_index
    _select(cfg, target, dry_run, output, print_simple_url)


# ----------------------------------------------------------------------------------------- upload


@click.command(context_settings=CONTEXT)
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@_where
@click.option("--dry-run", is_flag=True, help="List what would be sent; send nothing.")
@_plaintext_flag
@_output("text", "json")
def upload(
    paths: tuple[str, ...],
    url: str | None,
    user: str | None,
    index: str | None,
    dry_run: bool,
    allow_plaintext_keyring: bool,
    output: str,
) -> None:
    """Upload wheels and sdists to the index, with their full core metadata.

    PATHS are files, or folders standing for the wheels and sdists in them (`tk-devpi upload
    dist/`). With no PATHS, builds the project in the current directory (python -m build) and
    uploads the result. Each file is streamed. Exit status 1 when any file failed.
    """
    from thinkube_devpi.shell import upload as uploads

    cfg = settings_mod.resolve(url, user, index)
    cfg.require_url()
    show = output == "text"

    with uploads.files(paths) as files:
        dists, results = uploads.read_all(files)
        if dry_run:
            for planned in uploads.planned(dists, cfg.index_url):
                results.append(planned)
                if show:
                    click.echo(planned.describe())
        elif dists:
            for sent in _send_all(cfg, dists, allow_plaintext_keyring, show):
                results.append(sent)
                if sent.ok and show:
                    click.echo(sent.describe())

    if output == "json":
        click.echo(
            json.dumps(
                {"index_url": cfg.index_url, "files": [r.to_json() for r in results]}, indent=2
            )
        )
    failures = [r.error for r in results if not r.ok]
    for message in failures:
        _err(f"error: {message}")
    if not files:
        raise click.ClickException("nothing to upload")
    if failures:
        sys.exit(1)


def _send_all(
    cfg: settings_mod.HelperSettings, dists: list[Distribution], allow_plaintext: bool, show: bool
) -> Iterator[FileResult]:
    """Send with the helpers' login (keyring password, token kept), a progress line on a tty."""
    from thinkube_devpi.shell import session as sessions
    from thinkube_devpi.shell.upload import Uploader

    root = cfg.require_url()
    tty = show and sys.stderr.isatty()

    def progress(dist: Distribution, done: int) -> None:
        if tty:
            pct = 100 * done // max(dist.size, 1)
            sys.stderr.write(f"\r{dist.path.name}: {pct:3d}% of {dist.size / 1e6:.1f} MB")
            sys.stderr.flush()

    login = sessions.Login(root, cfg.user, allow_plaintext=allow_plaintext)
    with _api(root) as api:
        uploader = Uploader(api, cfg.index, login, on_progress=progress)
        for result in uploader.send_all(dists):
            if tty:
                sys.stderr.write("\n")
            yield result


# ------------------------------------------------------------------------------------- pip-config


@click.command(context_settings=CONTEXT)
@_where
@click.option(
    "--target",
    type=click.Choice(["user", "venv"]),
    default=None,
    help="user: ~/.config/pip/pip.conf and ~/.config/uv/uv.toml; venv: $VIRTUAL_ENV/pip.conf. "
    "Default: venv when a virtualenv is active, else user.",
)
@click.option("--pip/--no-pip", "do_pip", default=True, help="Write pip.conf.")
@click.option("--uv/--no-uv", "do_uv", default=True, help="Write uv.toml (user target only).")
@click.option("--dry-run", is_flag=True, help="Show what would be written; write nothing.")
@_output("text", "json")
def pip_config(
    url: str | None,
    user: str | None,
    index: str | None,
    target: str | None,
    do_pip: bool,
    do_uv: bool,
    dry_run: bool,
    output: str,
) -> None:
    """Point pip and uv at the devpi index: a single index URL, never an extra index.

    devpi's root/pypi base already serves PyPI through the index, so no PyPI extra index is added
    (one would invite dependency confusion). Replaced files are kept as <name>.bak-<time>.
    """
    import os

    from thinkube_devpi.shell import pipconf

    cfg = settings_mod.resolve(url, user, index)
    chosen_target = target or ("venv" if os.environ.get("VIRTUAL_ENV") else "user")
    planned = pipconf.plan(cfg.simple_url, chosen_target, pip=do_pip, uv=do_uv)
    if dry_run:
        if output == "json":
            click.echo(
                json.dumps(
                    {
                        "dry_run": True,
                        "files": [p.to_json() | {"content": p.content} for p in planned],
                    },
                    indent=2,
                )
            )
            return
        for p in planned:
            click.echo(f"would {p.action} {p.path}:")
            click.echo("".join(f"    {line}\n" for line in p.content.splitlines()), nl=False)
            for note in p.notes:
                click.echo(f"  note: {note}")
        return
    written = pipconf.write(planned)
    if output == "json":
        click.echo(
            json.dumps({"dry_run": False, "files": [w.to_json() for w in written]}, indent=2)
        )
        return
    for w, p in zip(written, planned, strict=True):
        backup = f" (old file kept as {w.backup})" if w.backup else ""
        click.echo(f"{w.action} {w.path}{backup}")
        for note in p.notes:
            click.echo(f"  note: {note}")
    if chosen_target == "venv" and do_uv:
        click.echo(
            "uv has no per-virtualenv config file: devpi-use-prod sets UV_DEFAULT_INDEX in fish"
        )
