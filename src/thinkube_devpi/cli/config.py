"""`tk-devpi config ...`: write, show and check the installer's settings."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import click

from thinkube_devpi.config import (
    ConfigError,
    Settings,
    default_config_path,
    from_mapping,
    load,
    save,
)

# Asked by `config init` when not given: they have no usable default.
ASKED = ("domain", "deploy_repo")


@click.group()
def config() -> None:
    """Write, show and check the installer's settings (a TOML file; THINKUBE_DEVPI_* overrides)."""


def _field_options(fn):  # type: ignore[no-untyped-def]
    for f in reversed(dataclasses.fields(Settings)):
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool" or isinstance(f.default, bool):
            fn = click.option(flag, f.name, type=bool, default=None, help=f.metadata["help"])(fn)
        else:
            fn = click.option(flag, f.name, default=None, help=f.metadata["help"])(fn)
    return fn


@config.command()
@click.option(
    "--config", "path", type=click.Path(path_type=Path), default=None, help="Where to write."
)
@click.option("--force", is_flag=True, help="Overwrite an existing settings file.")
@click.option("--dry-run", is_flag=True, help="Print the file instead of writing it.")
@_field_options
def init(path: Path | None, force: bool, dry_run: bool, **values: object) -> None:
    """Write a settings file. Asks for the domain and the deployment repository when not given.

    Every other value has a default (see `tk-devpi config show`); pass --NAME VALUE to change one.
    """
    path = path or default_config_path()
    if path.exists() and not force and not dry_run:
        raise click.ClickException(f"{path} exists: pass --force to overwrite it, or edit it.")
    data = {k: v for k, v in values.items() if v is not None}
    interactive = sys.stdin.isatty()
    for name in ASKED:
        if name in data:
            continue
        if not interactive:
            if name == "domain":
                raise click.UsageError("--domain is required (no terminal to ask on)")
            continue
        help_text = {
            "domain": "Cluster domain (hosts become devpi.<domain> and devpi-api.<domain>)",
            "deploy_repo": "Deployment repository SSH URL (empty: set it later)",
        }[name]
        while True:
            answer = click.prompt(help_text, default="", show_default=False).strip()
            if not answer and name != "domain":
                break
            try:
                from_mapping({**data, name: answer}, source="input")
            except ConfigError as exc:
                click.echo(f"  {exc}", err=True)
                continue
            data[name] = answer
            break
    settings = from_mapping(data, source="flags")
    if dry_run:
        click.echo(settings.to_toml(), nl=False)
        return
    click.echo(f"wrote {save(settings, path)}")


# a setting left empty takes this derived value (shown beside it, never as Python's None)
DERIVED_FROM = {
    "domain": "effective_domain",
    "dashboard_host": "dashboard",
    "api_host": "api",
    "keycloak_url": "keycloak",
    "registry": "registry_host",
}


def shown_value(settings: Settings, name: str) -> str:
    """A setting as an admin reads it: true/false, and what an empty one becomes."""
    value = getattr(settings, name)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or value == "":
        if name in DERIVED_FROM:
            return f"(derived) {getattr(settings, DERIVED_FROM[name])}"
        return "(not set)"
    return str(value)


@config.command()
@click.option("--config", "path", type=click.Path(path_type=Path), default=None)
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text")
def show(path: Path | None, output: str) -> None:
    """Show the effective settings (file plus THINKUBE_DEVPI_* overrides) and derived hosts."""
    settings = load(path)
    derived = {
        "dashboard": settings.dashboard,
        "api": settings.api,
        "keycloak_url": settings.keycloak,
        "issuer": settings.issuer,
        "registry": settings.registry_host,
        "prod_index": settings.prod_index,
    }
    if output == "json":
        click.echo(
            json.dumps(
                {
                    "file": str(path or default_config_path()),
                    "settings": dataclasses.asdict(settings),
                    "derived": derived,
                },
                indent=2,
            )
        )
        return
    click.echo(f"# {path or default_config_path()}")
    for f in dataclasses.fields(Settings):
        shown = shown_value(settings, f.name)
        click.echo(f"{f.name:<24} {shown:<32} {f.metadata['help']}")
    for key, value in derived.items():
        click.echo(f"{'(' + key + ')':<24} {value}")
    if settings.is_placeholder:
        click.echo("note: the domain is the placeholder thinkube.local; apply refuses it", err=True)


@config.command()
@click.option("--config", "path", type=click.Path(path_type=Path), default=None)
def check(path: Path | None) -> None:
    """Validate the settings; exit 1 with the first problem."""
    settings = load(path)
    click.echo(
        "settings are valid"
        + (" (placeholder domain: plan only)" if settings.is_placeholder else "")
    )
