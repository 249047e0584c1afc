"""The install phases, in DESIGN.md section 4's order: :data:`PHASES` is the list.

A new phase is a module ``pNN_<name>.py`` here with one ``Phase`` subclass, and one line in
:data:`PHASES`; the runner, the CLI and the TUI take their rows from this list.
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
from thinkube_devpi.installer.phases.p88_test import TestPhase
from thinkube_devpi.installer.phases.p89_rollback import RollbackPhase

# in install order; 88 (verify) and 89 (roll back everything) run on demand, never in apply-all
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
    TestPhase,
    RollbackPhase,
]


def phase_classes() -> list[type[Phase]]:
    return list(PHASES)


def build(ctx: Context) -> list[Phase]:
    return [cls(ctx) for cls in phase_classes()]


def select(phases: list[Phase], wanted: str) -> Phase:
    """A phase by number or name; a clear error naming the choices otherwise."""
    for phase in phases:
        if wanted in (str(phase.number), phase.name):
            return phase
    choices = ", ".join(f"{p.number} {p.name}" for p in phases)
    raise ValueError(f"unknown phase {wanted!r}: choose one of {choices}")
