"""Look for secrets where they must never be: in plain, base64 and JSON-escaped forms.

`argv_recorder()` observes every process this test process starts (``subprocess.Popen``,
``os.exec*``, ``os.spawn*``, ``os.posix_spawn``) through an audit hook, short-lived ones too.
"""

from __future__ import annotations

import base64
import contextlib
import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any

_ACTIVE: list[list[str]] = []
_HOOKED = False


def forms(value: str) -> list[str]:
    """The forms a secret can leak in."""
    raw = value.encode()
    out = {
        value,
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        json.dumps(value)[1:-1],
    }
    return sorted(f for f in out if len(f) >= 6)


def find(haystack: str, secrets: Iterable[str]) -> list[str]:
    """Which of ``secrets`` (by position) show up in ``haystack`` in any form."""
    hits = []
    for i, secret in enumerate(secrets):
        if any(f in haystack for f in forms(secret)):
            hits.append(f"secret #{i}")
    return hits


def assert_absent(where: str, haystack: Any, secrets: Iterable[str]) -> None:
    text = haystack if isinstance(haystack, str) else json.dumps(haystack, default=str)
    hits = find(text, list(secrets))
    assert not hits, f"{', '.join(hits)} found in {where}"


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not _ACTIVE:
        return
    if event == "subprocess.Popen":
        argv = args[1]
    elif event in ("os.exec", "os.posix_spawn", "os.spawn"):
        argv = args[1] if len(args) > 1 else args
    elif event == "os.system":
        argv = args[0]
    else:
        return
    text = argv if isinstance(argv, str | bytes) else " ".join(map(str, argv or ()))
    for sink in _ACTIVE:
        sink.append(text.decode(errors="replace") if isinstance(text, bytes) else str(text))


@contextlib.contextmanager
def argv_recorder() -> Iterator[list[str]]:
    global _HOOKED
    if not _HOOKED:
        sys.addaudithook(_hook)
        _HOOKED = True
    sink: list[str] = []
    _ACTIVE.append(sink)
    try:
        yield sink
    finally:
        _ACTIVE.remove(sink)
