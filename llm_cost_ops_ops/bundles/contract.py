"""The environment contract: the rendered bundle must be what environments.yaml says.

An overlay edit that changes replicas, resources, storage, autoscaling, the disruption budget,
monitoring or the application settings of an environment fails here, before any deploy. Objects
are found by role (roles.py), so prefixed or renamed trees are held to the same contract, and each
finding names the object as rendered.
"""

from __future__ import annotations

from typing import Any

from ..environments import EnvironmentSpec
from .findings import Finding
from .model import ManifestObject, RenderedBundle
from .platform import CLUSTER_SCOPED_KINDS, DATABASE_VOLUME_CLAIM
from .quantity import same_quantity
from .roles import RoleLookup

CHECK = "contract"


def _get(node: Any, *path: str | int) -> Any:
    for key in path:
        if isinstance(key, int):
            node = node[key] if isinstance(node, list) and len(node) > key else None
        else:
            node = node.get(key) if isinstance(node, dict) else None
    return node


class _Contract:
    def __init__(self, bundle: RenderedBundle, spec: EnvironmentSpec):
        self.bundle, self.spec = bundle, spec
        self.roles = RoleLookup(bundle, spec)
        self.findings: list[Finding] = []

    def fail(self, rule: str, obj: ManifestObject | None, field: str, message: str) -> None:
        self.findings.append(Finding.of(CHECK, rule, self.bundle.environment, obj, field, message))

    def expect(self, rule: str, obj: ManifestObject, field: str, expected: Any, quantity=False) -> None:
        seen = _get(obj.body, *_split(field))
        equal = same_quantity(seen, expected) if quantity else seen == expected
        if not equal:
            self.fail(rule, obj, field, f"expected {expected!r} (environments.yaml), rendered {seen!r}")

    def require(self, role: str, rule: str) -> ManifestObject | None:
        found = self.roles.find(role)
        if found.obj is None:
            self.fail(rule, None, "", found.missing)
        return found.obj


def _split(field: str) -> list[str | int]:
    parts: list[str | int] = []
    for piece in field.split("."):
        name, _, rest = piece.partition("[")
        if name:
            parts.append(name)
        while rest:
            index, _, rest = rest.partition("]")
            parts.append(int(index))
            rest = rest.removeprefix("[")
    return parts


def _container_index(obj: ManifestObject, image: str) -> int:
    """The main container: the one running the role's image (its last path component)."""
    containers = _get(obj.body, "spec", "template", "spec", "containers") or []
    return next((i for i, c in enumerate(containers) if image in str(c.get("image", ""))), 0)


def _namespace(c: _Contract) -> None:
    if not any(o.kind == "Namespace" and o.name == c.spec.namespace for o in c.bundle.objects):
        c.fail("namespace", None, "", f"Namespace {c.spec.namespace} is missing from the bundle")
    for obj in c.bundle.objects:
        if obj.kind not in CLUSTER_SCOPED_KINDS and obj.namespace != c.spec.namespace:
            c.fail(
                "namespace",
                obj,
                "metadata.namespace",
                f"expected {c.spec.namespace!r}, rendered {obj.namespace!r}",
            )


def _api(c: _Contract) -> None:
    api = c.spec.api
    deployment = c.require("api", "api")
    if deployment:
        c.expect("api", deployment, "spec.replicas", api.replicas)
        base = f"spec.template.spec.containers[{_container_index(deployment, 'llm-cost-ops')}].resources"
        for section in ("requests", "limits"):
            amounts = getattr(api.resources, section)
            for resource in ("cpu", "memory"):
                c.expect(
                    "api",
                    deployment,
                    f"{base}.{section}.{resource}",
                    getattr(amounts, resource),
                    quantity=True,
                )
    hpa = c.require("autoscaler", "autoscaling")
    if hpa:
        scaling = api.autoscaling
        c.expect("autoscaling", hpa, "spec.minReplicas", scaling.min_replicas)
        c.expect("autoscaling", hpa, "spec.maxReplicas", scaling.max_replicas)
        targets = {
            _get(m, "resource", "name"): _get(m, "resource", "target", "averageUtilization")
            for m in _get(hpa.body, "spec", "metrics") or []
            if m.get("type") == "Resource"
        }
        wanted = {"cpu": scaling.cpu_utilization, "memory": scaling.memory_utilization}
        if targets != wanted:
            c.fail(
                "autoscaling",
                hpa,
                "spec.metrics",
                f"expected utilization targets {wanted}, rendered {targets}",
            )
    if api.pdb_min_available is not None and deployment:
        pdb = c.require("disruption-budget", "disruption-budget")
        if pdb:
            c.expect("disruption-budget", pdb, "spec.minAvailable", api.pdb_min_available)


def _database(c: _Contract) -> None:
    memory = c.spec.database.memory
    if c.spec.database.external or memory is None:
        # The renderer leaves the database component out: nothing to size, and nothing may be left.
        statefulset = c.roles.find("database").obj
        if statefulset is not None:
            c.fail(
                "database",
                statefulset,
                "",
                f"database.external is true for {c.spec.name}, "
                f"but StatefulSet {statefulset.name} is in the bundle",
            )
        return
    statefulset = c.require("database", "database")
    if statefulset:
        claims = _get(statefulset.body, "spec", "volumeClaimTemplates") or []
        index = next(
            (i for i, t in enumerate(claims) if _get(t, "metadata", "name") == DATABASE_VOLUME_CLAIM), 0
        )
        c.expect(
            "database",
            statefulset,
            f"spec.volumeClaimTemplates[{index}].spec.resources.requests.storage",
            c.spec.database.storage,
            quantity=True,
        )
        base = f"spec.template.spec.containers[{_container_index(statefulset, 'postgres')}].resources"
        c.expect("database", statefulset, f"{base}.requests.memory", memory.request, quantity=True)
        c.expect("database", statefulset, f"{base}.limits.memory", memory.limit, quantity=True)


def _monitoring(c: _Contract) -> None:
    state = "on" if c.spec.monitoring else "off"
    for role in ("prometheus", "grafana"):
        found = c.roles.find(role)
        if c.spec.monitoring and found.obj is None:
            c.fail("monitoring", None, "", f"monitoring is {state} for {c.spec.name} but {found.missing}")
        elif not c.spec.monitoring and found.obj is not None:
            c.fail(
                "monitoring",
                found.obj,
                "",
                f"monitoring is {state} for {c.spec.name} but Deployment {found.obj.name} is present",
            )


def _config(c: _Contract) -> None:
    configmap = c.require("config", "config")
    if configmap:
        for key, value in c.spec.config.items():
            c.expect("config", configmap, f"data.{key}", value)
    secret = c.roles.find("secret")
    if not secret.name:
        c.fail("secret", None, "", secret.missing)
        return
    shipped = secret.obj is not None
    if shipped != c.spec.placeholder_secret:
        c.fail(
            "secret",
            secret.obj,
            "",
            f"Secret {secret.name} (the API's envFrom secretRef) "
            f"{'ships in' if shipped else 'is not shipped in'} the bundle, "
            f"but placeholder_secret is {str(c.spec.placeholder_secret).lower()} for {c.spec.name}",
        )


_CLAUSES = (_namespace, _api, _database, _monitoring, _config)


def check_contract(bundle: RenderedBundle, spec: EnvironmentSpec) -> list[Finding]:
    """Compare the rendered bundle with the environment's spec, clause by clause."""
    contract = _Contract(bundle, spec)
    for clause in _CLAUSES:
        clause(contract)
    return contract.findings
