"""`tk-devpi fish install|print|uninstall|status`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

CONTEXT = {"help_option_names": ["-h", "--help"]}

def _not_empty(_ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path | None:
    # click turns "" into Path("."): the current folder, which nobody means
    if value is not None and str(value).strip() in ("", "."):
        raise click.BadParameter(
            "an empty path (or '.') is not a folder to install into: give the fish config "
            "folder, such as ~/.config/fish, or leave --dir out",
        )
    return value


_dir_option = click.option(
    "--dir",
    "fish_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    callback=_not_empty,
    help="fish config dir to write into (default: $XDG_CONFIG_HOME/fish or ~/.config/fish).",
)
_output_option = click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format; json is for scripts.",
)


def _target(fish_dir: Path | None) -> Path:
    from thinkube_devpi.fish.generator import default_fish_dir

    return fish_dir or default_fish_dir()


def _show(report: object, output: str) -> None:
    from thinkube_devpi.fish.generator import Report

    assert isinstance(report, Report)
    if output == "json":
        click.echo(json.dumps(report.to_json(), indent=2))
        return
    for rel, what in report.files:
        click.echo(
            f"{what:>10}  {report.fish_dir / rel}"
            if len(what) <= 10
            else f"{report.fish_dir / rel}: {what}"
        )


@click.group(context_settings=CONTEXT)
def fish() -> None:
    """Install, print or remove the generated fish functions and completions.

    Functions: devpi-login, devpi-logout, devpi-use-prod (also sets PIP_INDEX_URL and
    UV_DEFAULT_INDEX in the shell), devpi-upload, devpi-env, devpi-whoami. One autoloaded file each;
    nothing runs when fish starts, and no file holds a secret.
    """


@fish.command(context_settings=CONTEXT)
@_dir_option
@click.option("--dry-run", is_flag=True, help="Say what would be written; write nothing.")
@click.option(
    "--force", is_flag=True, help="Replace files you edited or that are not ours (kept as backups)."
)
@_output_option
def install(fish_dir: Path | None, dry_run: bool, force: bool, output: str) -> None:
    """Write the functions into functions/ and the completions into completions/."""
    from thinkube_devpi.fish import generator

    report = generator.install(_target(fish_dir), dry_run=dry_run, force=force)
    _show(report, output)
    if report.problems:
        sys.exit(1)


@fish.command(name="print", context_settings=CONTEXT)
@_dir_option
def print_(fish_dir: Path | None) -> None:
    """Show every file install would write, with its path."""
    from thinkube_devpi.fish import generator

    target = _target(fish_dir)
    for rel, content in generator.render().items():
        click.echo(f"# ==> {target / rel}")
        click.echo(content)


@fish.command(context_settings=CONTEXT)
@_dir_option
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@_output_option
def uninstall(fish_dir: Path | None, dry_run: bool, output: str) -> None:
    """Remove exactly what install wrote; files you edited since are kept."""
    from thinkube_devpi.fish import generator

    report = generator.uninstall(_target(fish_dir), dry_run=dry_run)
    if not report.files and output == "text":
        click.echo(f"nothing installed by tk-devpi in {_target(fish_dir)}")
        return
    _show(report, output)


@fish.command(context_settings=CONTEXT)
@_dir_option
@_output_option
def status(fish_dir: Path | None, output: str) -> None:
    """Per file: installed, outdated, edited, missing or foreign. Exit 1 unless all installed."""
    from thinkube_devpi.fish import generator

    report = generator.status(_target(fish_dir))
    state = generator.overall(report)
    if output == "json":
        click.echo(json.dumps(report.to_json() | {"state": state}, indent=2))
    else:
        _show(report, output)
        click.echo(f"fish functions: {state}")
    if state != "installed":
        sys.exit(1)
