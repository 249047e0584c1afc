"""Schema validation of built-in kinds with kubernetes-validate (cached)."""

from __future__ import annotations

import functools
import re
from typing import Any

from fakes.kube_api.model import JSON, K8S_VERSION

# --------------------------------------------------------------------------------------------
# schema validation (kubernetes-validate, cached)


@functools.cache
def _schema_validator(api_version: str, kind: str) -> Any:
    """The same validator ``kubernetes_validate.validate(obj, K8S_VERSION, strict=True)`` builds,
    built once per kind (kubernetes_validate re-reads ~1 MB of definitions on every call)."""
    import jsonschema
    import kubernetes_validate.utils as kvu
    from referencing import Registry, Resource

    version = [v for v in kvu.all_versions() if kvu.major_minor(v) <= kvu.major_minor(K8S_VERSION)][
        -1
    ]
    gv = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema_dir = f"v{version}-local-strict"
    try:
        schema = kvu.schema_contents(
            f"kubernetes-json-schema/{schema_dir}/{kind.lower()}-{gv}.json", K8S_VERSION
        )
    except FileNotFoundError:
        return None
    defs = _schema_definitions(schema_dir)
    registry: Any = Resource.from_contents(schema) @ Registry()
    registry = Resource.from_contents(defs) @ registry
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


@functools.cache
def _schema_definitions(schema_dir: str) -> Any:
    import kubernetes_validate.utils as kvu

    return kvu.schema_contents(
        f"kubernetes-json-schema/{schema_dir}/_definitions.json", K8S_VERSION
    )


def schema_errors(obj: JSON) -> list[tuple[str, str]]:
    """(field, message) for each schema error of a built-in object; [] when valid."""
    import jsonschema

    validator = _schema_validator(obj.get("apiVersion", ""), obj.get("kind", ""))
    if validator is None:
        return [("kind", f"no schema for {obj.get('apiVersion')} {obj.get('kind')}")]
    err = jsonschema.exceptions.best_match(validator.iter_errors(obj))
    if err is None:
        return []
    where = ""
    for p in err.absolute_path:
        where += f"[{p}]" if isinstance(p, int) else (f".{p}" if where else str(p))
    return [(where, err.message)]
