"""The resource types the double serves and the discovery documents that describe them."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
SUBRESOURCE_VERBS = ("get", "patch", "update")


@dataclass(frozen=True)
class ResourceType:
    """One served resource: where it lives in the API and which subresources it has."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    subresources: frozenset[str] = field(default_factory=frozenset)
    verbs: tuple[str, ...] = ALL_VERBS
    custom: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def qualified(self) -> str:
        """The name the real server uses in messages: `deployments.apps`, `pods`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources


def _core(kind, plural, *, namespaced=True, short=(), subs=(), verbs=ALL_VERBS):
    return ResourceType("", "v1", kind, plural, namespaced, short, frozenset(subs), verbs)


def _group(gv, kind, plural, *, short=(), subs=("status",), namespaced=True):
    group, version = gv.split("/")
    return ResourceType(group, version, kind, plural, namespaced, short, frozenset(subs))


BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _core(
        "Namespace",
        "namespaces",
        namespaced=False,
        short=("ns",),
        subs=("status",),
        verbs=tuple(v for v in ALL_VERBS if v != "deletecollection"),
    ),
    _core("ServiceAccount", "serviceaccounts", short=("sa",)),
    _core("ConfigMap", "configmaps", short=("cm",)),
    _core("Secret", "secrets"),
    _core("Service", "services", short=("svc",), subs=("status",)),
    _core("PersistentVolumeClaim", "persistentvolumeclaims", short=("pvc",), subs=("status",)),
    _core("Pod", "pods", short=("po",), subs=("status", "log", "exec")),
    _core("Event", "events", short=("ev",)),
    _core("Endpoints", "endpoints", short=("ep",)),
    _group("apps/v1", "Deployment", "deployments", short=("deploy",), subs=("status", "scale")),
    _group("apps/v1", "StatefulSet", "statefulsets", short=("sts",), subs=("status", "scale")),
    _group("apps/v1", "ReplicaSet", "replicasets", short=("rs",), subs=("status", "scale")),
    _group("batch/v1", "Job", "jobs"),
    _group("batch/v1", "CronJob", "cronjobs", short=("cj",)),
    _group("rbac.authorization.k8s.io/v1", "Role", "roles", subs=()),
    _group("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", subs=()),
    _group("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", short=("netpol",), subs=()),
    _group("networking.k8s.io/v1", "Ingress", "ingresses", short=("ing",)),
    _group("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", short=("hpa",)),
    _group("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", short=("pdb",)),
    _group("coordination.k8s.io/v1", "Lease", "leases", subs=()),
    _group(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        short=("crd", "crds"),
        namespaced=False,
    ),
)

# How each subresource appears in an APIResourceList: (kind override, group/version, verbs).
_SUBRESOURCE_SHAPES = {
    "status": (None, None, SUBRESOURCE_VERBS),
    "scale": ("Scale", ("autoscaling", "v1"), SUBRESOURCE_VERBS),
    "log": (None, None, ("get",)),
    "exec": ("PodExecOptions", None, ("create", "get")),
}


class Catalog:
    """The served types, indexed by path segments and by kind; CRDs can add and remove types."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        for rtype in BUILTIN_TYPES:
            self.add(rtype)

    def add(self, rtype: ResourceType) -> None:
        with self._lock:
            self._types[(rtype.group, rtype.version, rtype.plural)] = rtype

    def remove(self, group: str, plural: str) -> list[ResourceType]:
        with self._lock:
            gone = [t for t in self._types.values() if t.group == group and t.plural == plural]
            for rtype in gone:
                del self._types[(rtype.group, rtype.version, rtype.plural)]
            return gone

    def find(self, group: str, version: str, plural: str) -> ResourceType | None:
        with self._lock:
            return self._types.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        with self._lock:
            for rtype in self._types.values():
                if (rtype.group, rtype.version, rtype.kind) == (group, version, kind):
                    return rtype
        return None

    def types(self) -> list[ResourceType]:
        with self._lock:
            return list(self._types.values())

    def versions(self) -> dict[str, list[str]]:
        """Served versions per group, in the order the types were added."""
        served: dict[str, list[str]] = {}
        for rtype in self.types():
            versions = served.setdefault(rtype.group, [])
            if rtype.version not in versions:
                versions.append(rtype.version)
        return served

    # Discovery documents, shaped like the real server's JSON.

    def core_versions(self, address: str) -> dict:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
        }

    def group_list(self) -> dict:
        groups = [self.group(name) for name in self.versions() if name]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def group(self, name: str) -> dict | None:
        versions = self.versions().get(name)
        if not name or not versions:
            return None
        entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": name,
            "versions": entries,
            "preferredVersion": dict(entries[0]),
        }

    def resource_list(self, group: str, version: str) -> dict | None:
        served = [t for t in self.types() if (t.group, t.version) == (group, version)]
        if not served:
            return None
        resources = []
        for rtype in sorted(served, key=lambda t: t.plural):
            resources.append(_resource_entry(rtype))
            for sub in sorted(rtype.subresources):
                resources.append(_subresource_entry(rtype, sub))
        document = {
            "kind": "APIResourceList",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }
        if group:
            document["apiVersion"] = "v1"
        return document


def _resource_entry(rtype: ResourceType) -> dict:
    entry = {
        "name": rtype.plural,
        "singularName": rtype.singular,
        "namespaced": rtype.namespaced,
        "kind": rtype.kind,
        "verbs": list(rtype.verbs),
    }
    if rtype.short_names:
        entry["shortNames"] = list(rtype.short_names)
    return entry


def _subresource_entry(rtype: ResourceType, sub: str) -> dict:
    kind, group_version, verbs = _SUBRESOURCE_SHAPES[sub]
    entry = {
        "name": f"{rtype.plural}/{sub}",
        "singularName": "",
        "namespaced": rtype.namespaced,
        "kind": kind or rtype.kind,
        "verbs": list(verbs),
    }
    if group_version:
        entry["group"], entry["version"] = group_version
    return entry
