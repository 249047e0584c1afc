"""Looking for secrets where they must not be: plain, base64, JSON-escaped and URL-encoded forms."""

from __future__ import annotations

import base64
import json
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, quote_plus

_recorders: list[list[str]] = []
_lock = threading.Lock()
_installed = False


def forms(secret: str) -> list[str]:
    """Every form a secret could leak in."""
    raw = secret.encode()
    out = {
        secret,
        json.dumps(secret)[1:-1],
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        quote(secret, safe=""),  # a form body or a query string, as a server may echo it
        quote_plus(secret),
    }
    # base64 of the secret inside a longer value starts at an unknown offset: check all three alignments
    for shift in (1, 2):
        chunk = base64.b64encode(b"\0" * shift + raw).decode()[4:-4]
        if len(chunk) >= 8:
            out.add(chunk)
    return sorted(out)


def find(secret: str, haystack: str | bytes) -> list[str]:
    text = haystack.decode(errors="replace") if isinstance(haystack, bytes) else haystack
    return [f for f in forms(secret) if f in text]


def assert_absent(where: str, haystack: object, secrets: Iterable[str]) -> None:
    """No secret of ``secrets``, in any form, in ``haystack`` (text, or data dumped as JSON)."""
    text = haystack if isinstance(haystack, str | bytes) else json.dumps(haystack, default=str)
    hits = [f"secret #{i}" for i, secret in enumerate(secrets) if find(secret, text)]
    assert not hits, f"{', '.join(hits)} found in {where}"


def _hook(event: str, args: tuple) -> None:
    if event not in ("subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.system"):
        return
    with _lock:
        if not _recorders:
            return
        text = repr(args)
        for rec in _recorders:
            rec.append(text)


@contextmanager
def process_argv() -> Iterator[list[str]]:
    """Records the argv (and env) of every process started meanwhile, short-lived ones too."""
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True
    rec: list[str] = []
    with _lock:
        _recorders.append(rec)
    try:
        yield rec
    finally:
        with _lock:
            _recorders.remove(rec)


argv_recorder = process_argv


def files_under(*roots: Path) -> Iterable[tuple[Path, bytes]]:
    for root in roots:
        if not root.exists():
            continue
        for path in root.rglob("*"):
            if path.is_file():
                yield path, path.read_bytes()
