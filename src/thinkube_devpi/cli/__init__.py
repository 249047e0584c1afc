"""`tk-devpi`: one click group for everything headless.

Subcommand groups are imported only when they run, so `tk-devpi whoami` pays for the
helpers' imports and not for the Kubernetes client's.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

import click

from thinkube_devpi.cli import completion as _completion  # noqa: F401  (registers fish)
from thinkube_devpi.errors import Error

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

# name -> "module:attribute" of a click command or group, imported on first use
LAZY_COMMANDS: dict[str, str] = {
    "backup": "thinkube_devpi.cli.backup:backup",
    "config": "thinkube_devpi.cli.config:config",
    "install": "thinkube_devpi.cli.install:install",
    "login": "thinkube_devpi.cli.helpers:login",
    "logout": "thinkube_devpi.cli.helpers:logout",
    "whoami": "thinkube_devpi.cli.helpers:whoami",
    "env": "thinkube_devpi.cli.helpers:env",
    "use": "thinkube_devpi.cli.helpers:use",
    "use-prod": "thinkube_devpi.cli.helpers:use_prod",
    "upload": "thinkube_devpi.cli.helpers:upload",
    "pip-config": "thinkube_devpi.cli.helpers:pip_config",
    "fish": "thinkube_devpi.cli.fish:fish",
}

SHORT_HELP: dict[str, str] = {
    "backup": "Back up the package data now, list and verify backups, restore one.",
    "config": "Write, show and check the installer's settings.",
    "install": "Plan, apply, check and roll back the DevPi install on the cluster.",
    "login": "Log in to the devpi index (password from the keyring, a prompt or stdin).",
    "logout": "Forget the devpi login (keyring and devpi-client).",
    "whoami": "Show URL, user, index and whether the login is still valid.",
    "env": "Print the helper settings as shell lines or JSON.",
    "use": "Select an index for the helpers and devpi-client.",
    "use-prod": "Select the prod index (admin/prod) for the helpers and devpi-client.",
    "upload": "Upload wheels and sdists with their full metadata.",
    "pip-config": "Point pip and uv at the devpi index (a single index URL).",
    "fish": "Install, print or remove the generated fish functions.",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported when they are invoked or listed in detail."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(LAZY_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = LAZY_COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attr = target.partition(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command), target
        return command

    def invoke(self, ctx: click.Context) -> object:
        # the one place the headless face turns the product's errors into `Error: ...`, exit 1
        try:
            return super().invoke(ctx)
        except Error as exc:
            raise click.ClickException(str(exc)) from None

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        # TAB after `tk-devpi` answers from the names and SHORT_HELP: nothing is imported
        from click.shell_completion import CompletionItem

        items = [
            CompletionItem(name, help=SHORT_HELP.get(name))
            for name in self.list_commands(ctx)
            if name.startswith(incomplete)
        ]
        if not items or incomplete.startswith("-"):
            items += click.Command.shell_complete(self, ctx, incomplete)
        return items

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Listing must not import every subcommand: --help stays fast.
        rows = [(name, SHORT_HELP.get(name, "")) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="thinkube-devpi", prog_name="tk-devpi")
def main() -> None:
    """Install DevPi on a thinkube cluster, and use it every day.

    Admins: `tk-devpi config init`, then `tk-devpi install plan` and `tk-devpi install apply`
    (or the guided `thinkube-devpi-tui`). Developers: `tk-devpi login`, `tk-devpi use-prod`,
    `tk-devpi upload dist/*`.
    """
