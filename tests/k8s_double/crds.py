"""CustomResourceDefinitions: the object a test installs, and the types it makes the server serve."""

from __future__ import annotations

from .catalog import ResourceType

CRD_GROUP = "apiextensions.k8s.io"


def definition(
    group: str,
    version: str,
    kind: str,
    plural: str,
    *,
    namespaced: bool = True,
    status: bool = True,
    short_names: tuple[str, ...] = (),
) -> dict:
    """A CustomResourceDefinition accepting any fields, as `install_crd` creates it."""
    served = {
        "name": version,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
    }
    if status:
        served["subresources"] = {"status": {}}
    names: dict = {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower()}
    if short_names:
        names["shortNames"] = list(short_names)
    return {
        "apiVersion": f"{CRD_GROUP}/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": names,
            "scope": "Namespaced" if namespaced else "Cluster",
            "versions": [served],
        },
    }


def served_types(crd: dict) -> list[ResourceType]:
    """The resource types a CRD object defines, one per served version."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    types = []
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        subresources = frozenset(sub for sub in (version.get("subresources") or {}) if sub == "status")
        types.append(
            ResourceType(
                group=spec["group"],
                version=version["name"],
                kind=names["kind"],
                plural=names["plural"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                subresources=subresources,
                custom=True,
            )
        )
    return types


def established_status(crd: dict) -> dict:
    """The status the apiextensions controller sets once the names are accepted."""
    spec = crd.get("spec") or {}
    conditions = [
        {"type": kind, "status": "True", "reason": reason, "message": message}
        for kind, reason, message in (
            ("NamesAccepted", "NoConflicts", "no conflicts found"),
            ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        )
    ]
    stored = [v["name"] for v in spec.get("versions") or [] if v.get("storage")]
    return {"acceptedNames": spec.get("names") or {}, "conditions": conditions, "storedVersions": stored}
