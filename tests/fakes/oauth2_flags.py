"""The pinned oauth2-proxy version's documented flags (tests/data), and checks against them."""

from __future__ import annotations

import functools
import re
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "oauth2-proxy-7.15.3-flags.txt"
ENV_PREFIX = "OAUTH2_PROXY_"


@functools.cache
def documented() -> dict[str, str]:
    """flag -> type ("string", "bool", "list", ...)."""
    out = {}
    for line in DATA.read_text().splitlines():
        if line.startswith("--"):
            name, kind = line.split()
            out[name] = kind
    return out


def flag_problems(args: list[str]) -> list[str]:
    flags = documented()
    out = []
    for arg in args:
        m = re.match(r"^(--[a-z0-9-]+)(=.*)?$", arg, re.S)
        if not m:
            out.append(f"{arg!r} is not a --flag=value argument")
        elif m.group(1) not in flags:
            out.append(f"{m.group(1)} is not documented for oauth2-proxy 7.15")
        elif flags[m.group(1)] == "bool" and m.group(2) not in (None, "=true", "=false"):
            out.append(f"{arg} is a bool flag")
    return out


def env_problems(names: list[str]) -> list[str]:
    """Each OAUTH2_PROXY_* variable maps to a documented flag; list flags use the plural name."""
    flags = documented()
    out = []
    for name in names:
        if not name.startswith(ENV_PREFIX):
            continue
        flag = "--" + name[len(ENV_PREFIX) :].lower().replace("_", "-")
        if flag in flags and (flags[flag] != "list" or flag.endswith("s")):
            continue
        if flag.endswith("s") and flags.get(flag[:-1]) == "list":
            continue
        if flags.get(flag) == "list":
            out.append(f"{name}: list flag {flag} reads the plural {name}S")
        else:
            out.append(f"{name}: no documented flag {flag}")
    return out
