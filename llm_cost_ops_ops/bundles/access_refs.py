"""References from workloads and bindings: service accounts, RBAC subjects and roles, the
ConfigMaps and Secrets pods read, and the keys they read from them.

A name may point outside the bundle when it is built in (`default`, `system:*`, the built-in
ClusterRoles) or declared in environments.yaml under `objects.external`. A Secret the environment
takes from outside (placeholder_secret false) is not an error: the keys the pods need are listed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..environments import EnvironmentSpec
from .findings import Finding
from .model import ManifestObject, RenderedBundle
from .roles import RoleLookup
from .workload_refs import CHECK, finding

BUILTIN_CLUSTER_ROLES = frozenset({"cluster-admin", "admin", "edit", "view"})


def _external(spec: EnvironmentSpec, name: str) -> bool:
    return name in spec.objects.external


def service_accounts_exist(bundle: RenderedBundle, spec: EnvironmentSpec) -> Iterator[Finding]:
    """Every pod's serviceAccountName is a ServiceAccount of the bundle (or `default`, or external)."""
    for obj in bundle.objects:
        found = obj.pod_template()
        if found is None:
            continue
        account = (found[1].get("spec") or {}).get("serviceAccountName")
        if not account or account == "default" or _external(spec, account):
            continue
        if not any(
            a.name == account and a.namespace == obj.namespace for a in bundle.of_kind("ServiceAccount")
        ):
            yield finding(
                "service-account", bundle, obj, f"{found[0]}.spec.serviceAccountName",
                f"runs as ServiceAccount {account}, which is not in the bundle",
            )  # fmt: skip


def bindings_resolve(bundle: RenderedBundle, spec: EnvironmentSpec) -> Iterator[Finding]:
    """Every RoleBinding/ClusterRoleBinding's ServiceAccount subjects and roleRef exist."""
    for binding in bundle.of_kind("RoleBinding", "ClusterRoleBinding"):
        for index, subject in enumerate(binding.body.get("subjects") or []):
            if subject.get("kind") != "ServiceAccount":
                continue  # Users and Groups live in the identity provider
            name, namespace = subject.get("name", ""), subject.get("namespace") or binding.namespace
            if name == "default" or name.startswith("system:") or _external(spec, name):
                continue
            if not any(a.name == name and a.namespace == namespace for a in bundle.of_kind("ServiceAccount")):
                yield finding(
                    "rbac-subject", bundle, binding, f"subjects[{index}].name",
                    f"binds ServiceAccount {namespace}/{name}, which is not in the bundle",
                )  # fmt: skip
        ref = binding.body.get("roleRef") or {}
        kind, name = ref.get("kind", ""), ref.get("name", "")
        builtin = kind == "ClusterRole" and (name in BUILTIN_CLUSTER_ROLES or name.startswith("system:"))
        present = any(
            r.name == name and (kind == "ClusterRole" or r.namespace == binding.namespace)
            for r in bundle.of_kind(kind)
        )
        if not (present or builtin or _external(spec, name)):
            yield finding(
                "rbac-role-ref", bundle, binding, "roleRef.name", f"{kind} {name} is not in the bundle"
            )


def _references(obj: ManifestObject) -> Iterator[tuple[str, str, str, str | None, bool]]:
    """(field, kind, name, key or None, optional) for every ConfigMap/Secret the pods read."""
    found = obj.pod_template()
    if found is None:
        return
    path, template = found
    for cpath, container in obj.containers():
        for i, source in enumerate(container.get("envFrom") or []):
            for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                if key in source:
                    ref = source[key]
                    yield (
                        f"{cpath}.envFrom[{i}].{key}.name",
                        kind,
                        ref.get("name", ""),
                        None,
                        bool(ref.get("optional")),
                    )
        for i, var in enumerate(container.get("env") or []):
            for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                ref = (var.get("valueFrom") or {}).get(key)
                if ref:
                    field = f"{cpath}.env[{i}].valueFrom.{key}"
                    yield field, kind, ref.get("name", ""), ref.get("key"), bool(ref.get("optional"))
    for i, volume in enumerate((template.get("spec") or {}).get("volumes") or []):
        base = f"{path}.spec.volumes[{i}]"
        yield from _volume_refs(base, volume)
        for j, source in enumerate((volume.get("projected") or {}).get("sources") or []):
            yield from _volume_refs(f"{base}.projected.sources[{j}]", source)


def _volume_refs(base: str, source: dict[str, Any]) -> Iterator[tuple[str, str, str, str | None, bool]]:
    for key, kind, name_key in (("configMap", "ConfigMap", "name"), ("secret", "Secret", "secretName")):
        ref = source.get(key)
        if ref is None:
            continue
        name = ref.get(name_key) or ref.get("name", "")
        items = ref.get("items") or []
        if not items:
            yield f"{base}.{key}.{name_key}", kind, name, None, bool(ref.get("optional"))
        for k, item in enumerate(items):
            yield f"{base}.{key}.items[{k}].key", kind, name, item.get("key"), bool(ref.get("optional"))


def _keys(obj: ManifestObject) -> set[str]:
    return {
        *(obj.body.get("data") or {}),
        *(obj.body.get("stringData") or {}),
        *(obj.body.get("binaryData") or {}),
    }


def config_references_resolve(bundle: RenderedBundle, spec: EnvironmentSpec) -> Iterator[Finding]:
    """ConfigMaps and Secrets the pods read exist and hold the keys read; for a Secret taken from
    outside the bundle, one warning lists the keys the pods need from it."""
    needed: dict[tuple[str, str], set[str]] = {}
    whole: set[tuple[str, str]] = set()  # read through envFrom: every key, none named
    # Whether the application's Secret ships is the contract's judgement (placeholder_secret).
    app_secret = RoleLookup(bundle, spec).find("secret").name
    for obj in bundle.objects:
        for field, kind, name, key, optional in _references(obj):
            target = next(
                (o for o in bundle.of_kind(kind) if o.name == name and o.namespace == obj.namespace), None
            )
            if target is None:
                if (kind == "Secret" and not spec.placeholder_secret) or _external(spec, name):
                    needed.setdefault((obj.namespace, name), set()).update([key] if key else [])
                    if key is None:
                        whole.add((obj.namespace, name))
                elif not optional and not (kind == "Secret" and name == app_secret):
                    yield finding(
                        "config-reference", bundle, obj, field, f"{kind} {name} is not in the bundle"
                    )
            elif key is not None and key not in _keys(target) and not optional:
                yield finding("config-reference", bundle, obj, field, f"{target.ref} has no key {key!r}")
    for (namespace, name), keys in sorted(needed.items()):
        listed = ", ".join(sorted(keys))
        if (namespace, name) in whole:
            listed = f"{listed}, and" if listed else ""
            listed += " every variable the pods read from it through envFrom"
            if name == app_secret:  # the application's settings (the deployment guide's list)
                listed += " (DATABASE_URL, JWT_SECRET, the provider API keys, WEBHOOK_SIGNING_SECRET)"
        yield Finding(
            CHECK, "external-secret", bundle.environment, f"Secret/{namespace}/{name}", "",
            f"taken from outside the bundle; provide it with the keys {listed.strip()}", "warning",
        )  # fmt: skip
