"""Strict OpenAPI validation of a bundle against a target Kubernetes version.

The JSON schemas are the ones shipped in the `kubernetes-validate` wheel. Its `validate()` reloads
the 1.2 MB definitions file for every object; this module loads each schema once per process and
keeps the compiled validators, and it treats a built-in API that the target version does not serve
(policy/v1beta1 after 1.25, for example) as an error rather than a warning.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource

from ..errors import RenderError
from ..kubernetes_versions import parse_target, strict_schema_dirs
from .findings import Finding
from .model import ManifestObject, RenderedBundle

CHECK = "schema"

# Custom resources this platform uses, with the operator that installs their CRD. Their schemas are
# not part of Kubernetes; the deploy step checks through discovery that the CRD is installed.
KNOWN_CUSTOM_KINDS: dict[tuple[str, str], str] = {
    ("monitoring.coreos.com", "ServiceMonitor"): "Prometheus Operator",
    ("monitoring.coreos.com", "PodMonitor"): "Prometheus Operator",
    ("monitoring.coreos.com", "PrometheusRule"): "Prometheus Operator",
    ("bitnami.com", "SealedSecret"): "Sealed Secrets",
    ("external-secrets.io", "ExternalSecret"): "External Secrets Operator",
}


def _api_suffix(api_version: str) -> str:
    # Same file naming as kubernetes-validate: rbac.authorization.k8s.io/v1 -> rbac-v1.
    return re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)


@cache
def schema_dir(kubernetes_version: str) -> Path:
    """The strict schema directory for the newest version not newer than the target.

    Raises RenderError for a target that is not a version or that the shipped schemas do not cover.
    """
    try:
        wanted = parse_target(kubernetes_version)
    except ValueError as exc:
        raise RenderError(str(exc)) from None
    candidates = [path for version, path in strict_schema_dirs() if version.release[:2] <= wanted.release[:2]]
    return candidates[-1]


@cache
def _kind_index(directory: Path) -> dict[str, frozenset[str]]:
    index: dict[str, set[str]] = {}
    for path in directory.glob("*.json"):
        kind, _, suffix = path.stem.partition("-")
        if suffix:
            index.setdefault(kind, set()).add(suffix)
    return {kind: frozenset(suffixes) for kind, suffixes in index.items()}


@cache
def _registry(directory: Path) -> Registry:
    definitions = json.loads((directory / "_definitions.json").read_text())
    return Resource.from_contents(definitions) @ Registry()


@cache
def _validator(directory: Path, filename: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((directory / filename).read_text())
    registry = Resource.from_contents(schema) @ _registry(directory)
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _field(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(object)"


def ensure_known_kinds(bundle: RenderedBundle, kubernetes_version: str) -> None:
    """Refuse a bundle holding a kind that is neither built in nor a known custom resource.

    Raises RenderError naming the object and the file it came from.
    """
    index = _kind_index(schema_dir(kubernetes_version))
    for obj in bundle.objects:
        if obj.kind.lower() in index or (obj.group, obj.kind) in KNOWN_CUSTOM_KINDS:
            continue
        where = f" in {obj.source}" if obj.source else ""
        raise RenderError(
            f"{bundle.environment}: unknown kind {obj.api_version} {obj.kind} ({obj.ref}){where}: "
            f"not a Kubernetes {kubernetes_version} kind nor a known custom resource"
        )


def _check_object(environment: str, obj: ManifestObject, directory: Path) -> list[Finding]:
    operator = KNOWN_CUSTOM_KINDS.get((obj.group, obj.kind))
    if operator:
        return [
            Finding.of(
                CHECK,
                "crd-required",
                environment,
                obj,
                "apiVersion",
                f"{obj.api_version} {obj.kind} is a custom resource: needs the {operator} CRD "
                "installed at deploy time (checked by discovery then)",
                "warning",
            )
        ]
    served = _kind_index(directory).get(obj.kind.lower(), frozenset())
    suffix = _api_suffix(obj.api_version)
    if suffix not in served:
        versions = ", ".join(sorted(served)) or "none"
        return [
            Finding.of(
                CHECK,
                "api-not-served",
                environment,
                obj,
                "apiVersion",
                f"{obj.api_version} {obj.kind} is not served by Kubernetes "
                f"{directory.name.split('-')[0][1:]} (served: {versions})",
            )
        ]
    validator = _validator(directory, f"{obj.kind.lower()}-{suffix}.json")
    return [
        Finding.of(CHECK, "openapi", environment, obj, _field(error.absolute_path), error.message)
        for error in validator.iter_errors(obj.body)
    ]


def check_schema(bundle: RenderedBundle, kubernetes_version: str) -> list[Finding]:
    """Validate every object strictly; unknown fields and unserved APIs are errors."""
    directory = schema_dir(kubernetes_version)
    findings: list[Finding] = []
    for obj in bundle.objects:
        findings.extend(_check_object(bundle.environment, obj, directory))
    return findings
