"""What the TUI says where the command line would name a command or a flag.

The installer's hints are written for `tk-devpi` (``Set it with `tk-devpi config init```). The
TUI's user fixes the same things in the TUI: a setting in the Config view, a secret in its secrets
block, a phase's state read beside its row. :func:`hint` rewords a hint when the event or error
says which setting or secret fixes it. The installer writes a command for the command line in
parentheses ("Apply phase 40 first (`tk-devpi install apply --phase keycloak`).");
:func:`text` drops those, so the TUI shows "Apply phase 40 first.".
"""

from __future__ import annotations

import re

from thinkube_devpi.installer.runner import NOT_HEALTHY_HINT

# the run options (Context fields) the run question offers, ticked only on purpose, with the
# text of their tick box; offered when the plan or the phase's last failure calls for them
RUN_OPTIONS: dict[str, str] = {
    "adopt": "Take over objects others made (rollback keeps them)",
    "force_conflicts": "Take over fields another field manager owns",
}


# a parenthesis holding a `tk-devpi ...` command, with the blank before it
_COMMAND = re.compile(r"\s*\([^()`]*`tk-devpi\s[^`]*`[^()]*\)")


# hints that only say how the command line sets a value: the TUI's own line replaces them
_HOW_THE_CLI_SETS = ("Set it with", "Export", "Re-run with")


def text(line: str) -> str:
    """A line from the installer (a log line, a state's reason) without the command line's
    commands in parentheses."""
    return _COMMAND.sub("", line) if "`tk-devpi " in line else line


def hint(hint: str, setting: str = "") -> str:
    """The hint in the TUI's words. ``setting`` is a settings field (lower case), a secret's
    variable name (upper case, as the Config view's secrets are named) or a run option."""
    if setting in RUN_OPTIONS:
        return f'Run it again and tick "{RUN_OPTIONS[setting]}" in the question.'
    if not setting:
        if hint == NOT_HEALTHY_HINT:
            return "The state and plan beside the phase say what is missing; r runs it again."
        return text(hint)
    if setting.isupper():
        where = (
            f"Type {setting} in the Config view (3), under its secrets (kept for this run, "
            "or in the keyring), and run again."
        )
    else:
        where = f"Set {setting} in the Config view (3), save it (ctrl+s) and run again."
    # what the hint says beyond how the command line sets it stays ("An SSH URL such as ...")
    rest = text(hint)
    return where if not rest or rest.startswith(_HOW_THE_CLI_SETS) else f"{where} {rest}"
