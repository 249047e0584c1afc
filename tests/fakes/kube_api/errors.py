"""Kubernetes ``Status`` errors, as the real API server words them."""

from __future__ import annotations

from fakes.kube_api.model import JSON, ResourceType

# --------------------------------------------------------------------------------------------
# errors


class ApiError(Exception):
    """Raised inside the fake; becomes a Status response."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: JSON | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}  # such as Retry-After on a 429

    def status(self) -> JSON:
        st: JSON = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            st["details"] = self.details
        return st


def _details(rt: ResourceType | None, name: str | None, kind: str | None = None) -> JSON:
    d: JSON = {}
    if name:
        d["name"] = name
    if rt is not None and rt.group:
        d["group"] = rt.group
    d["kind"] = kind or (rt.plural if rt else "")
    return d


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rt.qualified} "{name}" not found', _details(rt, name))


def ns_not_found(ns: str) -> ApiError:
    return ApiError(
        404, "NotFound", f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"}
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def invalid(rt: ResourceType, name: str, causes: list[tuple[str, str]]) -> ApiError:
    """422 Invalid; causes are (field, message) pairs."""
    text = ", ".join(f"{f}: {m}" if f else m for f, m in causes)
    if len(causes) > 1:
        text = "[" + text + "]"
    details = _details(rt, name, kind=rt.kind)
    details["causes"] = [
        {"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes
    ]
    return ApiError(422, "Invalid", f'{rt.kind_qualified} "{name}" is invalid: {text}', details)


def conflict_modified(rt: ResourceType, name: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {rt.qualified} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        _details(rt, name),
    )


def method_not_allowed() -> ApiError:
    return ApiError(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
        {},
    )


def ns_mismatch() -> ApiError:
    return bad_request(
        "the namespace of the provided object does not match the namespace sent on the request"
    )


def name_mismatch(body_name: str, url_name: str) -> ApiError:
    return bad_request(
        f"the name of the object ({body_name}) does not match the name on the URL ({url_name})"
    )


def path_not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})
