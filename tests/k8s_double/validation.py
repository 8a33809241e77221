"""The subset of the real server's validation that catches mistakes a deploy can make:
names, workload selectors, immutable selectors and Secret data encoding."""

from __future__ import annotations

import base64
import binascii
import json
import re

from .catalog import ResourceType
from .selectors import labels_match
from .status import ApiError, bad_request, invalid

Cause = tuple[str, str, str]  # (reason, field, message)

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAMED_KINDS = {"Namespace", "Service"}
_SELECTED_WORKLOADS = {"Deployment", "StatefulSet", "ReplicaSet"}


def _name_causes(kind: str, name: str) -> list[Cause]:
    if not name:
        return [("FieldValueRequired", "metadata.name", "Required value: name or generateName is required")]
    if kind in _LABEL_NAMED_KINDS:
        if len(name) <= 63 and _LABEL.match(name):
            return []
        rule = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'"
    else:
        if len(name) <= 253 and _SUBDOMAIN.match(name):
            return []
        rule = (
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
            "'-' or '.', and must start and end with an alphanumeric character"
        )
    return [("FieldValueInvalid", "metadata.name", f'Invalid value: "{name}": {rule}')]


def _go_map(labels: dict) -> str:
    """Labels printed as the Go server prints them in validation messages."""
    pairs = ", ".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in sorted(labels.items()))
    return f"map[string]string{{{pairs}}}"


def _selector_causes(obj: dict, old: dict | None) -> list[Cause]:
    spec = obj.get("spec") or {}
    selector = spec.get("selector")
    if not selector:
        return [("FieldValueRequired", "spec.selector", "Required value")]
    causes = []
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if not labels_match(selector, labels):
        causes.append(
            (
                "FieldValueInvalid",
                "spec.template.metadata.labels",
                f"Invalid value: {_go_map(labels)}: `selector` does not match template `labels`",
            )
        )
    if old is not None and (old.get("spec") or {}).get("selector") != selector:
        causes.append(
            ("FieldValueInvalid", "spec.selector", f"Invalid value: {selector!r}: field is immutable")
        )
    return causes


def _job_restart_causes(obj: dict) -> list[Cause]:
    template_spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    if template_spec.get("restartPolicy") in ("OnFailure", "Never"):
        return []
    return [
        (
            "FieldValueRequired",
            "spec.template.spec.restartPolicy",
            'Required value: valid values: "OnFailure", "Never"',
        )
    ]


def check_decodable(rtype: ResourceType, obj: dict) -> None:
    """Raise 400 like the server's decoder when Secret `data` is not base64."""
    if rtype.kind != "Secret":
        return
    for value in (obj.get("data") or {}).values():
        try:
            base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            raise bad_request(
                f'Secret in version "v1" cannot be handled as a Secret: illegal base64 data in {value!r}'
            ) from None


def validate(rtype: ResourceType, obj: dict, old: dict | None) -> None:
    """Raise ApiError 422 Invalid, with one cause per problem, if the object is invalid."""
    name = obj["metadata"].get("name", "")
    causes = _name_causes(rtype.kind, name)
    replicas = (obj.get("spec") or {}).get("replicas")
    if isinstance(replicas, int) and replicas < 0:
        causes.append(
            (
                "FieldValueInvalid",
                "spec.replicas",
                f"Invalid value: {replicas}: must be greater than or equal to 0",
            )
        )
    if rtype.kind in _SELECTED_WORKLOADS and not rtype.custom:
        causes += _selector_causes(obj, old)
    if rtype.kind == "Job" and not rtype.custom:
        causes += _job_restart_causes(obj)
    if causes:
        raise invalid(rtype, name, causes)


def rejection(rtype: ResourceType, obj: dict, message: str, field: str) -> ApiError:
    """The 422 a test-registered rule produces, shaped like a validating webhook's denial."""
    name = obj.get("metadata", {}).get("name", "")
    return invalid(rtype, name, [("FieldValueInvalid", field, message)])
