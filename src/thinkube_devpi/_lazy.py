"""Modules loaded on first use: the stdlib's LazyLoader recipe.

Every phase module is imported to list the phases, and the TUI lists them before its first paint;
httpx and PyYAML (about 0.15 s together) are needed only when a phase talks to Keycloak, GitHub or
the hosts, or renders YAML.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_import(name: str) -> ModuleType:
    """``name``, executed on its first attribute access (already imported: returned as is)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
