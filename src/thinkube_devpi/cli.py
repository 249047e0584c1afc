"""`tk-devpi`: one click group for everything headless.

Subcommand groups are imported only when they run, so `tk-devpi whoami` pays for the
helpers' imports and not for the Kubernetes client's.
"""

from __future__ import annotations

import importlib
import sys

import click

# name -> "module:attribute" of a click command or group, imported on first use
LAZY_COMMANDS: dict[str, str] = {
    "backup": "thinkube_devpi.backup_cli:backup",
    "config": "thinkube_devpi.config_cli:config",
    "install": "thinkube_devpi.installer.cli:install",
    "login": "thinkube_devpi.shell.cli:login",
    "logout": "thinkube_devpi.shell.cli:logout",
    "whoami": "thinkube_devpi.shell.cli:whoami",
    "env": "thinkube_devpi.shell.cli:env",
    "use": "thinkube_devpi.shell.cli:use",
    "use-prod": "thinkube_devpi.shell.cli:use_prod",
    "upload": "thinkube_devpi.shell.cli:upload",
    "pip-config": "thinkube_devpi.shell.cli:pip_config",
    "fish": "thinkube_devpi.fish.cli:fish",
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
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            return _not_built(cmd_name)
        command = getattr(module, attr, None)
        return command if isinstance(command, click.Command) else _not_built(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Listing must not import every subcommand: --help stays fast.
        rows = [(name, SHORT_HELP.get(name, "")) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _not_built(name: str) -> click.Command:
    @click.command(name=name, help=SHORT_HELP.get(name, ""))
    def _missing() -> None:
        raise click.ClickException(f"'tk-devpi {name}' is not available in this build yet.")

    return _missing


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="thinkube-devpi", prog_name="tk-devpi")
def main() -> None:
    """Install DevPi on a thinkube cluster, and use it every day.

    Admins: `tk-devpi config init`, then `tk-devpi install plan` and `tk-devpi install apply`
    (or the guided `thinkube-devpi-tui`). Developers: `tk-devpi login`, `tk-devpi use-prod`,
    `tk-devpi upload dist/*`.
    """


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
