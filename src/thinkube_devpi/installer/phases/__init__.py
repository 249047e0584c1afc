"""The install phases, in DESIGN.md section 4's order: :data:`PHASES` is the list.

A new phase is a module ``pNN_<name>.py`` here with one ``Phase`` subclass, and one line in
:data:`PHASES`; the runner, the CLI and the TUI take their rows from this list. Rows 88 (test) and
89 (rollback) are not phases but operations of the runner (``installer/operations.py``).
"""

from __future__ import annotations

from thinkube_devpi.installer.phases.base import Context, Phase
from thinkube_devpi.installer.phases.p10_namespace import NamespacePhase
from thinkube_devpi.installer.phases.p20_storage import StoragePhase
from thinkube_devpi.installer.phases.p30_redis import RedisPhase
from thinkube_devpi.installer.phases.p40_keycloak import KeycloakPhase
from thinkube_devpi.installer.phases.p50_oauth2_proxy import OAuth2ProxyPhase
from thinkube_devpi.installer.phases.p60_build import BuildPhase
from thinkube_devpi.installer.phases.p70_deploy import DeployPhase
from thinkube_devpi.installer.phases.p75_backup import BackupPhase
from thinkube_devpi.installer.phases.p80_exposure import ExposurePhase
from thinkube_devpi.installer.phases.p85_cli import CliPhase
from thinkube_devpi.installer.phases.p86_shell import ShellPhase

# in install order: `install apply` runs them all
PHASES: list[type[Phase]] = [
    NamespacePhase,
    StoragePhase,
    RedisPhase,
    KeycloakPhase,
    OAuth2ProxyPhase,
    BuildPhase,
    DeployPhase,
    BackupPhase,
    ExposurePhase,
    CliPhase,
    ShellPhase,
]


def build(ctx: Context) -> list[Phase]:
    """One instance of every phase, in install order, sharing ``ctx``."""
    return [cls(ctx) for cls in PHASES]
