"""From a URL path to a discovery document or a resource Target, as the real server routes."""

from __future__ import annotations

from dataclasses import dataclass

from . import status
from .catalog import Catalog
from .verbs import Target


@dataclass(frozen=True)
class Discovery:
    document: dict


@dataclass(frozen=True)
class ResourcePath:
    target: Target
    watch: bool = False  # the legacy /watch/ prefix


def version_document(version: str) -> dict:
    parts = [*version.lstrip("v").split("."), "0", "0"][:3]
    return {
        "major": parts[0],
        "minor": parts[1],
        "gitVersion": "v" + ".".join(parts),
        "gitCommit": "0" * 40,
        "gitTreeState": "clean",
        "buildDate": "2024-01-01T00:00:00Z",
        "goVersion": "go1.22.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def route(catalog: Catalog, path: str, version: str, address: str) -> Discovery | ResourcePath:
    """Raise ApiError 404 for paths the server does not serve."""
    segments = [segment for segment in path.split("/") if segment]
    document = _discovery(catalog, segments, version, address)
    if document is not None:
        return Discovery(document)
    if len(segments) >= 3 and segments[:2] == ["api", "v1"]:
        group, version_, rest = "", "v1", segments[2:]
    elif len(segments) >= 4 and segments[0] == "apis":
        group, version_, rest = segments[1], segments[2], segments[3:]
    else:
        raise status.path_not_found()
    watch = rest[0] == "watch"
    if watch:
        rest = rest[1:]
    namespace = ""
    if len(rest) >= 3 and rest[0] == "namespaces":
        inner = catalog.find(group, version_, rest[2])
        if inner is not None and inner.namespaced:
            namespace, rest = rest[1], rest[2:]
    rtype = catalog.find(group, version_, rest[0]) if rest else None
    if rtype is None or len(rest) > 3:
        raise status.path_not_found()
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if subresource and subresource not in rtype.subresources:
        raise status.path_not_found()
    if rtype.namespaced and name and not namespace:
        raise status.path_not_found()
    if namespace and not rtype.namespaced:
        raise status.path_not_found()
    return ResourcePath(Target(rtype, namespace, name, subresource), watch)


def _discovery(catalog: Catalog, segments: list[str], version: str, address: str) -> dict | None:
    if segments == ["version"]:
        return version_document(version)
    if segments == ["api"]:
        return catalog.core_versions(address)
    if segments == ["api", "v1"]:
        return catalog.resource_list("", "v1")
    if segments == ["apis"]:
        return catalog.group_list()
    if len(segments) == 2 and segments[0] == "apis":
        return catalog.group(segments[1]) or _missing()
    if len(segments) == 3 and segments[0] == "apis":
        return catalog.resource_list(segments[1], segments[2]) or _missing()
    return None


def _missing() -> dict:
    raise status.path_not_found()
