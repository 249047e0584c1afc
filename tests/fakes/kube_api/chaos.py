"""Fault injection for the fake API server: a seeded fraction of requests fail as real ones do.

What a real cluster behind ZeroTier or Tailscale does to a client, each chosen per request:

``500``    an etcd timeout (``etcdserver: request timed out``), before the request is applied
``409``    an optimistic-concurrency conflict ("the object has been modified"), no field manager
``429``    API priority and fairness turning the request away, with ``Retry-After``
``reset``  the connection reset (RST) before the request is applied, or after it was (the
           answer is lost: a create landed, the client cannot know)
``slow``   the answer comes ``slow_seconds`` late (a congested link)
``stall``  the connection stays open and silent (a dropped VPN link), before or after the request
           is applied, until the client gives up or ``stall_seconds`` pass

The choice depends only on the seed, the method, the path and how many times that method and
path were asked before, not on thread timing: a seed names one sequence of faults.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field

KINDS = ("500", "409", "429", "reset", "slow", "stall")


@dataclass(frozen=True)
class Fault:
    kind: str
    after: bool  # the request is applied first, then the answer is lost
    method: str
    path: str


@dataclass
class Chaos:
    seed: int
    rate: float = 0.1  # the fraction of requests (of writes, with writes_only) that fail
    writes_only: bool = True
    kinds: tuple[str, ...] = KINDS
    slow_seconds: float = 0.5  # a real link's 45 s, scaled to the test's read timeout
    stall_seconds: float = 10.0
    retry_after: int = 1
    first_only: bool = False  # only the first request of each method and path (for unit tests)
    injected: list[Fault] = field(default_factory=list)
    _seen: Counter[tuple[str, str]] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def decide(self, method: str, path: str, *, stream: bool) -> Fault | None:
        """The fault for this request, or None."""
        if self.writes_only and method in ("GET", "HEAD"):
            return None
        with self._lock:
            n = self._seen[(method, path)]
            self._seen[(method, path)] += 1
        if self.first_only and n:
            return None
        digest = hashlib.sha256(f"{self.seed}:{method}:{path}:{n}".encode()).digest()
        rng = random.Random(digest)
        if rng.random() >= self.rate:
            return None
        kind = rng.choice(self.kinds)
        # a stream (watch, log) has no single answer to lose after the fact
        after = kind in ("reset", "stall") and not stream and rng.random() < 0.5
        fault = Fault(kind, after, method, path)
        with self._lock:
            self.injected.append(fault)
        return fault

    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(f.kind + ("-after" if f.after else "") for f in self.injected)


def reset(conn: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0), as a middlebox dropping the flow does."""
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        conn.close()
