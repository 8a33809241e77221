"""Failure responses shaped like the real API server's `Status` objects."""

from __future__ import annotations

from .catalog import ResourceType

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiError(Exception):
    """A request the double refuses; `body()` is the Status the client receives."""

    def __init__(self, code: int, message: str, reason: str = "", details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASONS.get(code, "Unknown")
        self.details = details
        self.retry_after: int | None = None

    def body(self) -> dict:
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }
        if self.details is None:
            status.pop("details")
        return status


def _details(rtype: ResourceType, name: str, **extra) -> dict:
    details = {"name": name, "group": rtype.group, "kind": rtype.plural, **extra}
    if not rtype.group:
        details.pop("group")
    return details


def not_found(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(404, f'{rtype.qualified} "{name}" not found', details=_details(rtype, name))


def path_not_found() -> ApiError:
    return ApiError(404, "the server could not find the requested resource", details={})


def already_exists(rtype: ResourceType, name: str) -> ApiError:
    message = f'{rtype.qualified} "{name}" already exists'
    return ApiError(409, message, "AlreadyExists", _details(rtype, name))


def modified_conflict(rtype: ResourceType, name: str) -> ApiError:
    message = (
        f'Operation cannot be fulfilled on {rtype.qualified} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )
    return ApiError(409, message, "Conflict", _details(rtype, name))


def invalid(rtype: ResourceType, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
    """`causes` are (reason, field, message) triples, e.g. ("FieldValueInvalid", "spec", "...")."""
    summary = ", ".join(f"{field}: {message}" if field else message for _, field, message in causes)
    if len(causes) > 1:
        summary = f"[{summary}]"
    details: dict = {"name": name, "group": rtype.group, "kind": rtype.kind}
    details["causes"] = [
        {"reason": reason, "message": message, "field": field} for reason, field, message in causes
    ]
    if not rtype.group:
        details.pop("group")
    return ApiError(422, f'{rtype.qualified_kind} "{name}" is invalid: {summary}', details=details)


def apply_conflict(conflicts: list[tuple[str, str]], api_version: str) -> ApiError:
    """`conflicts` are (manager, field path) pairs, paths formatted like `.spec.replicas`."""
    managers = sorted({manager for manager, _ in conflicts})
    if len(conflicts) == 1:
        manager, path = conflicts[0]
        message = f'Apply failed with 1 conflict: conflict with "{manager}" using {api_version}: {path}'
    else:
        lines = []
        for manager in managers:
            lines.append(f'conflicts with "{manager}" using {api_version}:')
            lines.extend(f"- {path}" for owner, path in conflicts if owner == manager)
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    causes = [
        {
            "reason": "FieldManagerConflict",
            "message": f'conflict with "{manager}" using {api_version}',
            "field": path,
        }
        for manager, path in conflicts
    ]
    return ApiError(409, message, "Conflict", {"causes": causes})


def field_manager_required() -> ApiError:
    """The real server's answer to an apply without `fieldManager`: 422 on PatchOptions."""
    cause = {
        "reason": "FieldValueRequired",
        "message": "Required value: is required for apply patch",
        "field": "fieldManager",
    }
    message = (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch'
    )
    return ApiError(422, message, details={"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [cause]})


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def namespace_not_found(namespace: str) -> ApiError:
    return ApiError(
        404, f'namespaces "{namespace}" not found', details={"name": namespace, "kind": "namespaces"}
    )


def method_not_allowed() -> ApiError:
    return ApiError(405, "the server does not allow this method on the requested resource")


def injected(code: int, message: str | None = None) -> ApiError:
    """A fault a test asked for; 429 carries Retry-After like the real priority-and-fairness filter."""
    error = ApiError(code, message or f"injected fault: {REASONS.get(code, 'error')}")
    if code == 429:
        error.retry_after = 1
        error.details = {"retryAfterSeconds": 1}
    return error
