"""The install phases, in DESIGN.md section 4's order.

The table below names every phase. A module ``pNN_<name>.py`` in this package that defines a
``Phase`` subclass with that number provides the real phase; until one exists the phase is a
placeholder whose plan says "not implemented yet". New phases need no change here or in the UIs.
"""

from __future__ import annotations

import importlib
import pkgutil

from thinkube_devpi.installer.phases.base import Context, Phase, Placeholder

TABLE: list[tuple[int, str, str]] = [
    (10, "namespace", "Namespace and RBAC"),
    (20, "storage", "Package data volume"),
    (30, "redis", "Redis for oauth2-proxy sessions"),
    (40, "keycloak", "Keycloak client"),
    (50, "oauth2-proxy", "OAuth2 Proxy in front of the dashboard"),
    (60, "build", "Deployment repository and image build"),
    (70, "deploy", "GitOps deployment with ArgoCD"),
    (75, "backup", "Nightly backup to object storage"),
    (80, "exposure", "Dashboard and API hosts"),
    (85, "cli", "Helper configuration"),
    (86, "shell", "fish functions and pip/uv configuration"),
    (88, "test", "End-to-end test"),
    (89, "rollback", "Whole-install rollback"),
]


def _discover() -> dict[int, type[Phase]]:
    found: dict[int, type[Phase]] = {}
    for info in pkgutil.iter_modules(__path__):
        if not (info.name.startswith("p") and info.name[1:3].isdigit()):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Phase)
                and value.__module__ == module.__name__
                and getattr(value, "number", None) is not None
            ):
                found[value.number] = value
    return found


def phase_classes() -> list[type[Phase]]:
    real = _discover()
    out: list[type[Phase]] = []
    for number, name, title in TABLE:
        cls = real.get(number)
        if cls is None:
            cls = type(
                f"Phase{number}",
                (Placeholder,),
                {"number": number, "name": name, "title": title, "__module__": __name__},
            )
            if number in (88, 89):
                cls.in_apply_all = False
        out.append(cls)
    return out


def build(ctx: Context) -> list[Phase]:
    return [cls(ctx) for cls in phase_classes()]


def select(phases: list[Phase], wanted: str) -> Phase:
    """A phase by number or name; a clear error naming the choices otherwise."""
    for phase in phases:
        if wanted in (str(phase.number), phase.name):
            return phase
    choices = ", ".join(f"{p.number} {p.name}" for p in phases)
    raise ValueError(f"unknown phase {wanted!r}: choose one of {choices}")
