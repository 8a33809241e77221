"""Security posture and practice rules for a rendered bundle.

Each rule is one function yielding findings; RULES lists them in report order. They read only the
bundle and the environment's spec, so a rule can be tested on a hand-made object.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator
from typing import Any

from ..environments import EnvironmentSpec
from .findings import Finding
from .images import entry_takes_effect, moving_reason
from .model import ManifestObject, RenderedBundle
from .platform import (
    COMPONENT_LABEL,
    WRITABLE_ROOT_ANNOTATION,
)
from .roles import RoleLookup
from .secrets import is_placeholder
from .selectors import is_empty_selector

CHECK = "policy"
Rule = Callable[[RenderedBundle, EnvironmentSpec], Iterator[Finding]]


def _finding(rule: str, bundle: RenderedBundle, obj: ManifestObject | None, field: str, msg: str):
    return Finding.of(CHECK, rule, bundle.environment, obj, field, msg)


def _workloads(bundle: RenderedBundle) -> Iterator[tuple[ManifestObject, str, dict[str, Any]]]:
    for obj in bundle.objects:
        found = obj.pod_template()
        if found:
            yield obj, found[0], found[1]


def _pod_labels(template: dict[str, Any]) -> dict[str, str]:
    return (template.get("metadata") or {}).get("labels") or {}


def pod_runs_as_non_root(bundle: RenderedBundle, spec: EnvironmentSpec) -> Iterator[Finding]:
    """Pods set runAsNonRoot and never run as uid 0."""
    for obj, path, template in _workloads(bundle):
        pod_ctx = (template.get("spec") or {}).get("securityContext") or {}
        for cpath, container in obj.containers():
            ctx = container.get("securityContext") or {}
            non_root = ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot"))
            uid = ctx.get("runAsUser", pod_ctx.get("runAsUser"))
            if non_root is not True:
                yield _finding(
                    "run-as-non-root",
                    bundle,
                    obj,
                    f"{path}.spec.securityContext.runAsNonRoot",
                    f"container {container.get('name')} may run as root: set runAsNonRoot: true",
                )
            elif uid == 0:
                yield _finding(
                    "run-as-non-root",
                    bundle,
                    obj,
                    f"{cpath}.securityContext.runAsUser",
                    f"container {container.get('name')} runs as uid 0",
                )


def containers_read_only_root(bundle: RenderedBundle, spec: EnvironmentSpec) -> Iterator[Finding]:
    """Containers mount their root filesystem read-only unless the workload says why not."""
    for obj, _, _ in _workloads(bundle):
        if (obj.body["metadata"].get("annotations") or {}).get(WRITABLE_ROOT_ANNOTATION):
            continue
        for cpath, container in obj.containers():
            if (container.get("securityContext") or {}).get("readOnlyRootFilesystem") is not True:
                yield _finding(
                    "read-only-root-filesystem",
                    bundle,
                    obj,
                    f"{cpath}.securityContext.readOnlyRootFilesystem",
                    f"container {container.get('name')} must set readOnlyRootFilesystem: true "
                    f"(or annotate the workload with {WRITABLE_ROOT_ANNOTATION})",
                )


def containers_drop_all_capabilities(bundle: RenderedBundle, spec: EnvironmentSpec) -> Iterator[Finding]:
    """Containers drop ALL capabilities, run unprivileged and cannot escalate."""
    for obj, _, _ in _workloads(bundle):
        for cpath, container in obj.containers():
            ctx = container.get("securityContext") or {}
            dropped = (ctx.get("capabilities") or {}).get("drop") or []
            if "ALL" not in dropped:
                yield _finding(
                    "drop-all-capabilities",
                    bundle,
                    obj,
                    f"{cpath}.securityContext.capabilities.drop",
                    f"container {container.get('name')} must drop ALL capabilities",
                )
            if ctx.get("allowPrivilegeEscalation") is not False or ctx.get("privileged"):
                yield _finding(
                    "drop-all-capabilities",
                    bundle,
                    obj,
                    f"{cpath}.securityContext.allowPrivilegeEscalation",
                    f"container {container.get('name')} must set allowPrivilegeEscalation: false "
                    "and not be privileged",
                )


def pods_use_runtime_default_seccomp(bundle: RenderedBundle, spec: EnvironmentSpec) -> Iterator[Finding]:
    """Pods (or every container) use the RuntimeDefault (or a Localhost) seccomp profile."""
    allowed = {"RuntimeDefault", "Localhost"}
    for obj, path, template in _workloads(bundle):
        pod_profile = ((template.get("spec") or {}).get("securityContext") or {}).get("seccompProfile") or {}
        if pod_profile.get("type") in allowed:
            continue
        for _, container in obj.containers():
            profile = (container.get("securityContext") or {}).get("seccompProfile") or {}
            if profile.get("type") not in allowed:
                yield _finding(
                    "seccomp-runtime-default",
                    bundle,
                    obj,
                    f"{path}.spec.securityContext.seccompProfile.type",
                    f"container {container.get('name')} has no RuntimeDefault seccomp profile",
                )


def containers_have_requests_and_limits(bundle: RenderedBundle, spec: EnvironmentSpec) -> Iterator[Finding]:
    """Every container, init containers included, requests and limits cpu and memory."""
    for obj, _, _ in _workloads(bundle):
        for cpath, container in obj.containers():
            resources = container.get("resources") or {}
            for section in ("requests", "limits"):
                missing = [r for r in ("cpu", "memory") if r not in (resources.get(section) or {})]
                if missing:
                    yield _finding(
                        "requests-and-limits",
                        bundle,
                        obj,
                        f"{cpath}.resources.{section}",
                        f"container {container.get('name')} has no {section} for {', '.join(missing)}",
                    )


def api_has_probes(bundle: RenderedBundle, spec: EnvironmentSpec) -> Iterator[Finding]:
    """The API's containers have startup, readiness and liveness probes. The API is found by role
    (labels or image), so a tree with its own labels or names is judged too."""
    found = RoleLookup(bundle, spec).find("api")
    if found.obj is None:
        yield _finding("api-probes", bundle, None, "", found.missing)
        return
    for cpath, container in found.obj.containers():
        if "initContainers" in cpath:
            continue
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if not container.get(probe):
                yield _finding(
                    "api-probes",
                    bundle,
                    found.obj,
                    f"{cpath}.{probe}",
                    f"API container {container.get('name')} has no {probe}",
                )


# Tags that name an environment move with it (`:staging` is whatever staging last built).
ENVIRONMENT_TAGS = ("dev", "development", "test", "qa", "stage", "staging", "prod", "production")


def images_are_pinned(bundle: RenderedBundle, spec: EnvironmentSpec) -> Iterator[Finding]:
    """Outside environments that allow it, every image has a version-like tag or a digest."""
    if spec.mutable_image_tags:
        return
    for obj, _, _ in _workloads(bundle):
        for cpath, container in obj.containers():
            image = container.get("image", "")
            reason = moving_reason(image, (*ENVIRONMENT_TAGS, spec.name))
            if reason:
                yield _finding(
                    "pinned-image-tag",
                    bundle,
                    obj,
                    f"{cpath}.image",
                    f"image {image!r} is untagged or uses a moving tag ({reason}); {spec.name} needs "
                    "a fixed tag or digest",
                )


def image_entries_match(bundle: RenderedBundle, spec: EnvironmentSpec) -> Iterator[Finding]:
    """Every `images:` entry of the tree changes some image of the bundle (an entry that matches
    nothing is the usual reason an environment still runs `:latest`)."""
    images = bundle.images()
    # Entries come overlay first; an including kustomization applies its entries after the
    # included ones, so the entries listed before this one may rename what it produced.
    entries = list(bundle.image_entries)
    for index, entry in enumerate(entries):
        if not entry_takes_effect(entry, images, entries[:index]):
            wanted = entry.get("newName") or entry["name"]
            change = entry.get("newTag") or entry.get("digest") or "its new name"
            yield _finding(
                "image-entries",
                bundle,
                None,
                f"{entry['file']}:images[name={entry['name']}]",
                f"images entry {entry['name']!r} matches no image of the bundle (no image is {wanted} "
                f"with {change}); images rendered: {', '.join(images) or 'none'}",
            )


def network_is_restricted(bundle: RenderedBundle, spec: EnvironmentSpec) -> Iterator[Finding]:
    """A default-deny NetworkPolicy (empty podSelector, Ingress and Egress, no rules). Which flows
    the other policies open is judged on the reachability matrix by the references check."""
    if not any(
        is_empty_selector(s.get("podSelector"))
        and {"Ingress", "Egress"} <= set(s.get("policyTypes") or [])
        and not s.get("ingress")
        and not s.get("egress")
        for s in (p.body.get("spec") or {} for p in bundle.of_kind("NetworkPolicy"))
    ):
        yield _finding(
            "network-policies",
            bundle,
            None,
            "",
            "no default-deny NetworkPolicy (empty podSelector, Ingress and Egress, no rules)",
        )


def _secret_values(secret: ManifestObject) -> Iterator[tuple[str, str]]:
    for key, value in (secret.body.get("stringData") or {}).items():
        yield f"stringData.{key}", str(value)
    for key, value in (secret.body.get("data") or {}).items():
        try:
            yield f"data.{key}", base64.b64decode(str(value)).decode(errors="replace")
        except (binascii.Error, ValueError):
            yield f"data.{key}", ""


def no_placeholder_secrets(bundle: RenderedBundle, spec: EnvironmentSpec) -> Iterator[Finding]:
    """Outside environments that allow it, the bundle ships no Secret values at all; secrets come
    from outside (sealed-secrets, External Secrets or created by hand). Values are never shown."""
    if spec.placeholder_secret:
        return
    for secret in bundle.of_kind("Secret"):
        if secret.body.get("type") == "kubernetes.io/service-account-token":
            continue
        for field, value in _secret_values(secret):
            placeholder = is_placeholder(field.split(".", 1)[1], value)
            what = "a placeholder value" if placeholder else "a literal value"
            yield _finding(
                "no-placeholder-secrets",
                bundle,
                secret,
                field,
                f"{spec.name} bundle ships {what}; provide this Secret from outside the bundle",
            )


def service_account_per_component(bundle: RenderedBundle, spec: EnvironmentSpec) -> Iterator[Finding]:
    """Each workload runs as its own component's service account, never `default` (that the
    account exists is judged by the references check)."""
    accounts = {o.name for o in bundle.of_kind("ServiceAccount")}
    owner: dict[str, str] = {}
    for obj, path, template in _workloads(bundle):
        pod_spec = template.get("spec") or {}
        account = pod_spec.get("serviceAccountName") or "default"
        component = _pod_labels(template).get(COMPONENT_LABEL, obj.name)
        field = f"{path}.spec.serviceAccountName"
        if account == "default":
            yield _finding(
                "service-account-per-component",
                bundle,
                obj,
                field,
                "runs as the namespace's default service account, not its component's own",
            )
        elif account not in accounts:
            continue  # a missing account is the references check's finding
        elif owner.setdefault(account, component) != component:
            yield _finding(
                "service-account-per-component",
                bundle,
                obj,
                field,
                f"service account {account!r} is shared by components {owner[account]} and {component}",
            )


def rbac_is_least_privilege(bundle: RenderedBundle, spec: EnvironmentSpec) -> Iterator[Finding]:
    """Namespaced Roles only, no wildcards, no binding to the built-in admin roles."""
    for obj in bundle.of_kind("ClusterRole", "ClusterRoleBinding"):
        yield _finding(
            "least-privilege-rbac",
            bundle,
            obj,
            "kind",
            "the platform needs no cluster-wide permissions; use a namespaced Role",
        )
    for role in bundle.of_kind("Role", "ClusterRole"):
        for index, rule in enumerate(role.body.get("rules") or []):
            for key in ("verbs", "resources", "apiGroups"):
                if "*" in (rule.get(key) or []):
                    yield _finding(
                        "least-privilege-rbac",
                        bundle,
                        role,
                        f"rules[{index}].{key}",
                        f"wildcard {key} grants more than the component needs",
                    )
    for binding in bundle.of_kind("RoleBinding", "ClusterRoleBinding"):
        ref = binding.body.get("roleRef") or {}
        if ref.get("kind") == "ClusterRole" and ref.get("name") in {"cluster-admin", "admin", "edit"}:
            yield _finding(
                "least-privilege-rbac",
                bundle,
                binding,
                "roleRef.name",
                f"binds the built-in {ref['name']} role",
            )


def no_migrations_in_init_containers(bundle: RenderedBundle, spec: EnvironmentSpec) -> Iterator[Finding]:
    """Migrations never run from an init container: `sqlx migrate run` takes no lock, so replicas
    would race. They run once per deploy from this project."""
    for obj, _, _ in _workloads(bundle):
        for cpath, container in obj.containers():
            words = " ".join(str(w) for w in (container.get("command") or []) + (container.get("args") or []))
            if "initContainers" in cpath and "migrate" in words:
                yield _finding(
                    "no-migration-init-container",
                    bundle,
                    obj,
                    f"{cpath}.command",
                    "runs migrations in an init container on every replica; they race",
                )


def kustomize_without_warnings(bundle: RenderedBundle, spec: EnvironmentSpec) -> Iterator[Finding]:
    """kustomize printed nothing on stderr (deprecated fields warn there)."""
    for warning in bundle.warnings:
        where, _, message = warning.partition(": ")
        where, message = (where, message) if message else ("", warning)
        yield _finding("kustomize-warnings", bundle, None, where, f"kustomize warned: {message}")


RULES: tuple[Rule, ...] = (
    pod_runs_as_non_root,
    containers_read_only_root,
    containers_drop_all_capabilities,
    pods_use_runtime_default_seccomp,
    containers_have_requests_and_limits,
    api_has_probes,
    images_are_pinned,
    image_entries_match,
    network_is_restricted,
    no_placeholder_secrets,
    service_account_per_component,
    rbac_is_least_privilege,
    no_migrations_in_init_containers,
    kustomize_without_warnings,
)


def check_policy(bundle: RenderedBundle, spec: EnvironmentSpec) -> list[Finding]:
    """Run every rule; the findings name environment, object, field and rule."""
    return [finding for rule in RULES for finding in rule(bundle, spec)]
