"""Which HTTPRoute a Gateway serves a request with: Gateway API attachment and precedence.

- A route attaches to the listeners its ``parentRefs`` name: with ``sectionName`` that listener,
  without it EVERY listener of the Gateway (HTTP on port 80 included), where ``allowedRoutes``
  lets its namespace in.
- A request reaches the listeners on its port whose ``hostname`` matches the host.
- Among the routes attached there, the most specific hostname wins, as Envoy's virtual hosts do:
  an exact host over a wildcard, a wildcard over a route without hostnames (a catch-all such as
  thinkube's HTTP-to-HTTPS redirect); then the oldest, then namespace/name.
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]


def _host_matches(pattern: str | None, host: str) -> bool:
    if not pattern:
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and host.count(".") >= pattern.count(".")
    return pattern == host


def _specificity(route: JSON, host: str) -> int:
    names = route["spec"].get("hostnames") or []
    if not names:
        return 0
    best = -1
    for n in names:
        if n == host:
            best = max(best, 2)
        elif n.startswith("*.") and _host_matches(n, host):
            best = max(best, 1)
    return best


def serving_route(gateway: JSON, routes: list[JSON], port: int, host: str) -> str | None:
    """``namespace/name`` of the route that answers ``host`` on ``port`` (None: no route)."""
    gw_ns, gw_name = gateway["metadata"]["namespace"], gateway["metadata"]["name"]
    listeners = [
        x
        for x in gateway["spec"]["listeners"]
        if x["port"] == port and _host_matches(x.get("hostname"), host)
    ]
    candidates = []
    for route in routes:
        rns = route["metadata"]["namespace"]
        for ref in route["spec"].get("parentRefs") or []:
            if ref["name"] != gw_name or ref.get("namespace", rns) != gw_ns:
                continue
            for x in listeners:
                if ref.get("sectionName") not in (None, x["name"]):
                    continue
                allowed = ((x.get("allowedRoutes") or {}).get("namespaces") or {}).get("from")
                if allowed != "All" and rns != gw_ns:
                    continue
                score = _specificity(route, host)
                if score >= 0:
                    candidates.append((score, route))
    if not candidates:
        return None
    candidates.sort(
        key=lambda c: (
            -c[0],
            c[1]["metadata"].get("creationTimestamp", ""),
            f"{c[1]['metadata']['namespace']}/{c[1]['metadata']['name']}",
        )
    )
    best = candidates[0][1]["metadata"]
    return f"{best['namespace']}/{best['name']}"
