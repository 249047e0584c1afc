"""Field sets (managedFields), server-side apply merging and the three other PATCH types."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Any

from fakes.kube_api.model import JSON, SYSTEM_META, FieldPath, ResourceType

# --------------------------------------------------------------------------------------------
# field sets (managedFields) and merging


def _list_keys(rt: ResourceType, names: tuple[str, ...]) -> tuple[str, ...] | None:
    """The associative-list keys a real server uses for built-in kinds (None: atomic)."""
    if not rt.builtin or not names:
        return None
    last = names[-1]
    if last in ("containers", "initContainers", "ephemeralContainers", "env", "volumes"):
        return ("name",)
    if last == "imagePullSecrets":
        return ("name",)
    if last == "volumeMounts":
        return ("mountPath",)
    if last == "volumeDevices":
        return ("devicePath",)
    if last == "ports":
        if any(n in ("containers", "initContainers", "ephemeralContainers") for n in names):
            return ("containerPort", "protocol")
        if rt.plural == "services" and names[:-1] == ("spec",):
            return ("port", "protocol")
        return None
    if last == "conditions":
        return ("type",)
    if last == "ownerReferences":
        return ("uid",)
    if last == "hostAliases":
        return ("ip",)
    return None


_KEY_DEFAULTS = {"protocol": "TCP"}


def _item_key(item: Any, keys: tuple[str, ...]) -> str | None:
    if not isinstance(item, dict):
        return None
    kd: JSON = {}
    for k in keys:
        if k in item:
            kd[k] = item[k]
        elif k in _KEY_DEFAULTS:
            kd[k] = _KEY_DEFAULTS[k]
        else:
            return None
    return "k:" + json.dumps(kd, sort_keys=True, separators=(",", ":"))


def _keyed(lst: list[Any], keys: tuple[str, ...]) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    for item in lst:
        k = _item_key(item, keys)
        if k is None:
            return None
        out[k] = item
    return out


def _collect(
    value: Any, rt: ResourceType, names: tuple[str, ...], prefix: FieldPath, out: set[FieldPath]
) -> None:
    for k, v in value.items():
        p = (*prefix, "f:" + k)
        n = (*names, k)
        if isinstance(v, dict) and v:
            _collect(v, rt, n, p, out)
            continue
        keys = _list_keys(rt, n) if isinstance(v, list) else None
        keyed = _keyed(v, keys) if keys and v else None
        if keyed is not None:
            for ik, item in keyed.items():
                out.add((*p, ik, "."))
                _collect(item, rt, n, (*p, ik), out)
        else:
            out.add(p)


def field_set(obj: JSON | None, rt: ResourceType, scope: str) -> set[FieldPath]:
    """Leaf paths of ``obj`` in fieldsV1 notation. scope: "main" or "status"."""
    out: set[FieldPath] = set()
    if not obj:
        return out
    for k, v in obj.items():
        if k in ("apiVersion", "kind"):
            continue
        if scope == "status" and k != "status":
            continue
        if scope == "main" and k == "status" and rt.status:
            continue
        if k == "status" and not v:
            continue
        if k == "metadata" and isinstance(v, dict):
            v = {mk: mv for mk, mv in v.items() if mk not in SYSTEM_META}
            if not v:
                continue
        if isinstance(v, dict) and v:
            _collect(v, rt, (k,), ("f:" + k,), out)
        elif isinstance(v, list) and v and (keys := _list_keys(rt, (k,))):
            _collect({k: v}, rt, (), (), out)
            del keys
        else:
            out.add(("f:" + k,))
    return out


def encode_fields(paths: Iterable[FieldPath]) -> JSON:
    root: JSON = {}
    for p in sorted(paths):
        node = root
        for part in p:
            node = node.setdefault(part, {})
    return root


def decode_fields(tree: JSON, prefix: FieldPath = ()) -> set[FieldPath]:
    out: set[FieldPath] = set()
    for k, v in (tree or {}).items():
        p = (*prefix, k)
        if isinstance(v, dict) and v:
            out |= decode_fields(v, p)
        else:
            out.add(p)
    return out


_MISSING = object()


def _get_path(obj: Any, path: FieldPath) -> Any:
    cur = obj
    for part in path:
        if part == ".":
            return cur
        if part.startswith("f:"):
            if not isinstance(cur, dict) or part[2:] not in cur:
                return _MISSING
            cur = cur[part[2:]]
        elif part.startswith("k:"):
            if not isinstance(cur, list):
                return _MISSING
            kd = json.loads(part[2:])
            keys = tuple(kd)
            for item in cur:
                if _item_key(item, keys) == part:
                    cur = item
                    break
            else:
                return _MISSING
        else:
            return _MISSING
    return cur


def _delete_path(obj: Any, path: FieldPath) -> None:
    """Delete a leaf (``f:``) or a list item (path ending in ``k:...``)."""
    parent = _get_path(obj, path[:-1])
    last = path[-1]
    if last.startswith("f:") and isinstance(parent, dict):
        parent.pop(last[2:], None)
    elif last.startswith("k:") and isinstance(parent, list):
        keys = tuple(json.loads(last[2:]))
        parent[:] = [i for i in parent if _item_key(i, keys) != last]


def path_text(path: FieldPath) -> str:
    """``.spec.template.spec.containers[name="c"].image`` as in server messages."""
    out = ""
    for part in path:
        if part.startswith("f:"):
            out += "." + part[2:]
        elif part.startswith("k:"):
            kd = json.loads(part[2:])
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in kd.items()) + "]"
    return out


def merge_apply(live: Any, applied: Any, rt: ResourceType, names: tuple[str, ...] = ()) -> Any:
    """Merge an applied configuration into a live object (keyed lists merge by key)."""
    if not isinstance(live, dict) or not isinstance(applied, dict):
        return copy.deepcopy(applied)
    out = copy.deepcopy(live)
    for k, v in applied.items():
        if v is None:
            continue
        n = (*names, k)
        lv = out.get(k)
        if isinstance(v, dict) and isinstance(lv, dict):
            out[k] = merge_apply(lv, v, rt, n)
        elif isinstance(v, list) and isinstance(lv, list) and (keys := _list_keys(rt, n)):
            lk, ak = _keyed(lv, keys), _keyed(v, keys)
            if lk is None or ak is None:
                out[k] = copy.deepcopy(v)
                continue
            # live order is kept and new items go last, so re-applying never reorders
            merged = [
                merge_apply(item, ak[ik], rt, n) if ik in ak else item for ik, item in lk.items()
            ]
            merged += [copy.deepcopy(item) for ik, item in ak.items() if ik not in lk]
            out[k] = merged
        else:
            out[k] = copy.deepcopy(v)
    return out


def json_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = json_merge_patch(out.get(k), v)
    return out


def strategic_merge_patch(
    target: Any, patch: Any, rt: ResourceType, names: tuple[str, ...] = ()
) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if k.startswith("$"):
            continue
        n = (*names, k)
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict):
            out[k] = strategic_merge_patch(out.get(k), v, rt, n)
        elif isinstance(v, list) and isinstance(out.get(k), list) and (keys := _list_keys(rt, n)):
            items = list(out[k])
            for pitem in v:
                pk = _item_key(pitem, keys)
                idx = next(
                    (i for i, it in enumerate(items) if pk and _item_key(it, keys) == pk), None
                )
                if isinstance(pitem, dict) and pitem.get("$patch") == "delete":
                    if idx is not None:
                        items.pop(idx)
                elif idx is not None:
                    items[idx] = strategic_merge_patch(items[idx], pitem, rt, n)
                else:
                    items.append(strategic_merge_patch({}, pitem, rt, n))
            out[k] = items
        else:
            out[k] = copy.deepcopy(v)
    return out


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ValueError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902; raises ValueError on a failed operation."""
    doc = copy.deepcopy(doc)
    if not isinstance(ops, list):
        raise ValueError("json patch must be a list of operations")

    def parent_of(parts: list[str]) -> tuple[Any, str]:
        cur = doc
        for p in parts[:-1]:
            if isinstance(cur, list):
                cur = cur[int(p)]
            elif isinstance(cur, dict) and p in cur:
                cur = cur[p]
            else:
                raise ValueError(f"doc is missing path: /{'/'.join(parts)}")
        return cur, parts[-1]

    def get(parts: list[str]) -> Any:
        if not parts:
            return doc
        par, last = parent_of(parts)
        try:
            return par[int(last)] if isinstance(par, list) else par[last]
        except (KeyError, IndexError, ValueError):
            raise ValueError(f"doc is missing path: /{'/'.join(parts)}") from None

    def remove(parts: list[str]) -> Any:
        par, last = parent_of(parts)
        try:
            return par.pop(int(last)) if isinstance(par, list) else par.pop(last)
        except (KeyError, IndexError, ValueError):
            raise ValueError(f"unable to remove nonexistent key: {last}: missing value") from None

    def add(parts: list[str], value: Any) -> None:
        nonlocal doc
        if not parts:
            doc = value
            return
        par, last = parent_of(parts)
        if isinstance(par, list):
            if last == "-":
                par.append(value)
            else:
                i = int(last)
                if i > len(par):
                    raise ValueError(f"add operation does not apply: index {i} out of bounds")
                par.insert(i, value)
        elif isinstance(par, dict):
            par[last] = value
        else:
            raise ValueError(f"doc is missing path: /{'/'.join(parts)}")

    for op in ops:
        kind = op.get("op")
        parts = _pointer(op.get("path", ""))
        if kind == "add":
            add(parts, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            remove(parts)
        elif kind == "replace":
            get(parts)
            remove(parts) if parts else None
            add(parts, copy.deepcopy(op.get("value")))
        elif kind == "move":
            value = remove(_pointer(op["from"]))
            add(parts, value)
        elif kind == "copy":
            add(parts, copy.deepcopy(get(_pointer(op["from"]))))
        elif kind == "test":
            if get(parts) != op.get("value"):
                raise ValueError(f"testing value {op.get('path')} failed: test failed")
        else:
            raise ValueError(f"Unexpected kind: {kind}")
    return doc
