"""Label and field selectors, parsed and matched as the API server does."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from fakes.kube_api.errors import bad_request
from fakes.kube_api.model import JSON, ResourceType, _dig

# --------------------------------------------------------------------------------------------
# selectors


@dataclass
class _Req:
    key: str
    op: str  # = != in notin exists !exists
    values: tuple[str, ...] = ()


def _split_top(text: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [p.strip() for p in out if p.strip()]


def parse_label_selector(text: str) -> list[_Req]:
    reqs: list[_Req] = []
    for part in _split_top(text or ""):
        m = re.fullmatch(r"([^\s!=()]+)\s+(in|notin)\s+\(([^)]*)\)", part)
        if m:
            vals = tuple(v.strip() for v in m.group(3).split(",") if v.strip())
            reqs.append(_Req(m.group(1), m.group(2), vals))
            continue
        m = re.fullmatch(r"([^\s!=]+)\s*(==|=|!=)\s*([^\s]*)", part)
        if m:
            op = "!=" if m.group(2) == "!=" else "="
            reqs.append(_Req(m.group(1), op, (m.group(3),)))
            continue
        m = re.fullmatch(r"!\s*([^\s!=()]+)", part)
        if m:
            reqs.append(_Req(m.group(1), "!exists"))
            continue
        if re.fullmatch(r"[^\s!=()]+", part):
            reqs.append(_Req(part, "exists"))
            continue
        raise bad_request(f"unable to parse requirement: {part!r}")
    return reqs


def _req_matches(req: _Req, value: str | None) -> bool:
    if req.op == "exists":
        return value is not None
    if req.op == "!exists":
        return value is None
    if req.op in ("=", "in"):
        return value is not None and value in req.values
    # != and notin match when the key is absent too
    return value is None or value not in req.values


FIELD_LABELS: dict[str, tuple[str, ...]] = {
    "pods": (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "secrets": ("type",),
    "events": (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    "namespaces": ("status.phase",),
    "persistentvolumeclaims": (),
    "jobs": ("status.successful",),
}


def parse_field_selector(rt: ResourceType, text: str) -> list[_Req]:
    reqs: list[_Req] = []
    for part in _split_top(text or ""):
        m = re.fullmatch(r"([^\s!=]+)\s*(==|=|!=)\s*(.*)", part)
        if not m:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        key = m.group(1)
        allowed = ("metadata.name", "metadata.namespace", *FIELD_LABELS.get(rt.plural, ()))
        if key not in allowed:
            raise bad_request(f"field label not supported: {key}")
        reqs.append(_Req(key, "!=" if m.group(2) == "!=" else "=", (m.group(3).strip(),)))
    return reqs


@dataclass
class Selector:
    labels: list[_Req] = field(default_factory=list)
    fields: list[_Req] = field(default_factory=list)

    def matches(self, obj: JSON) -> bool:
        lbls = (obj.get("metadata") or {}).get("labels") or {}
        for r in self.labels:
            if not _req_matches(r, lbls.get(r.key)):
                return False
        for r in self.fields:
            v = _dig(obj, r.key)
            if v is None and r.key == "metadata.namespace":
                v = ""
            sv = None if v is None else (str(v).lower() if isinstance(v, bool) else str(v))
            if sv is None:
                sv = ""
            if not _req_matches(r, sv):
                return False
        return True
