"""References between the objects of a bundle: what a Service, Ingress, HPA or PDB points at exists.

Each rule yields findings of the `references` check; `references.py` runs them. Pods are the pod
templates of the bundle's workloads, matched by the one selector judge (selectors.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..environments import EnvironmentSpec
from .findings import Finding
from .model import ManifestObject, RenderedBundle
from .roles import pod_labels
from .selectors import is_empty_selector, labels_match, selector_matches

CHECK = "references"


def finding(rule: str, bundle: RenderedBundle, obj: ManifestObject | None, field: str, msg: str) -> Finding:
    return Finding.of(CHECK, rule, bundle.environment, obj, field, msg)


@dataclass(frozen=True)
class Workload:
    """A workload of the bundle and what its pods look like."""

    obj: ManifestObject
    labels: dict[str, str]
    ports: tuple[tuple[str, int], ...]  # (name, containerPort) of every regular container

    @property
    def namespace(self) -> str:
        return self.obj.namespace


def workloads(bundle: RenderedBundle) -> list[Workload]:
    found = []
    for obj in bundle.objects:
        if obj.pod_template() is None:
            continue
        ports = tuple(
            (str(p.get("name", "")), int(p.get("containerPort", 0)))
            for path, c in obj.containers()
            if "initContainers" not in path
            for p in c.get("ports") or []
        )
        found.append(Workload(obj, pod_labels(obj), ports))
    return found


def _spec(obj: ManifestObject) -> dict[str, Any]:
    return obj.body.get("spec") or {}


def services_select_pods(bundle: RenderedBundle, spec: EnvironmentSpec) -> Iterator[Finding]:
    """Every Service with a selector selects pods of a workload, on a port those pods expose."""
    pods = workloads(bundle)
    for service in bundle.of_kind("Service"):
        selector = _spec(service).get("selector")
        if not selector:
            continue  # ExternalName, or endpoints managed by hand
        selected = [w for w in pods if w.namespace == service.namespace and labels_match(selector, w.labels)]
        if not selected:
            shown = ", ".join(f"{k}={v}" for k, v in selector.items())
            yield finding("service-selector", bundle, service, "spec.selector", f"selects no pod ({shown})")
            continue
        names = {name for w in selected for name, _ in w.ports if name}
        numbers = {number for w in selected for _, number in w.ports}
        for index, port in enumerate(_spec(service).get("ports") or []):
            target = port.get("targetPort", port.get("port"))
            if (target not in names) if isinstance(target, str) else (target not in numbers):
                pods_of = ", ".join(w.obj.ref for w in selected)
                yield finding(
                    "service-port",
                    bundle,
                    service,
                    f"spec.ports[{index}].targetPort",
                    f"targetPort {target!r} is no container port of the pods it selects ({pods_of})",
                )


def _backends(ingress: ManifestObject) -> Iterator[tuple[str, dict[str, Any]]]:
    default = (_spec(ingress).get("defaultBackend") or {}).get("service")
    if default:
        yield "spec.defaultBackend.service", default
    for i, rule in enumerate(_spec(ingress).get("rules") or []):
        for j, path in enumerate((rule.get("http") or {}).get("paths") or []):
            service = (path.get("backend") or {}).get("service")
            if service:
                yield f"spec.rules[{i}].http.paths[{j}].backend.service", service


def ingress_backends_exist(bundle: RenderedBundle, spec: EnvironmentSpec) -> Iterator[Finding]:
    """Every Ingress backend names a Service of its namespace and one of that Service's ports."""
    for ingress in bundle.of_kind("Ingress"):
        for field, backend in _backends(ingress):
            name, port = backend.get("name"), backend.get("port") or {}
            service = next(
                (s for s in bundle.of_kind("Service") if s.name == name and s.namespace == ingress.namespace),
                None,
            )
            if service is None:
                yield finding(
                    "ingress-backend", bundle, ingress, f"{field}.name", f"no Service {name} in the bundle"
                )
                continue
            ports = _spec(service).get("ports") or []
            if "number" in port and all(p.get("port") != port["number"] for p in ports):
                yield finding(
                    "ingress-backend", bundle, ingress, f"{field}.port.number",
                    f"{service.ref} has no port {port['number']}",
                )  # fmt: skip
            if "name" in port and all(p.get("name") != port["name"] for p in ports):
                yield finding(
                    "ingress-backend", bundle, ingress, f"{field}.port.name",
                    f"{service.ref} has no port named {port['name']!r}",
                )  # fmt: skip


def autoscalers_target_workloads(bundle: RenderedBundle, spec: EnvironmentSpec) -> Iterator[Finding]:
    """Every HPA's scaleTargetRef names a workload of the bundle."""
    for hpa in bundle.of_kind("HorizontalPodAutoscaler"):
        ref = _spec(hpa).get("scaleTargetRef") or {}
        target = bundle.find(str(ref.get("kind")), str(ref.get("name")))
        if target is None or target.namespace != hpa.namespace:
            yield finding(
                "autoscaler-target", bundle, hpa, "spec.scaleTargetRef.name",
                f"scales {ref.get('kind')} {ref.get('name')}, which is not in the bundle",
            )  # fmt: skip


def _replicas(bundle: RenderedBundle, workload: ManifestObject) -> int:
    """The fewest replicas the workload runs: its HPA's minimum where one scales it."""
    for hpa in bundle.of_kind("HorizontalPodAutoscaler"):
        ref = _spec(hpa).get("scaleTargetRef") or {}
        if ref.get("kind") == workload.kind and ref.get("name") == workload.name:
            return int(_spec(hpa).get("minReplicas", 1))
    return int(_spec(workload).get("replicas", 1))


def disruption_budgets_can_evict(bundle: RenderedBundle, spec: EnvironmentSpec) -> Iterator[Finding]:
    """Every PDB selects a workload's pods and allows at least one eviction (else drains block)."""
    pods = workloads(bundle)
    for pdb in bundle.of_kind("PodDisruptionBudget"):
        selector = _spec(pdb).get("selector")
        selected = [
            w for w in pods
            if w.namespace == pdb.namespace and not is_empty_selector(selector)
            and selector_matches(selector, w.labels)
        ]  # fmt: skip
        if not selected:
            yield finding(
                "disruption-budget-selector", bundle, pdb, "spec.selector", "selects no pod of the bundle"
            )
            continue
        replicas = sum(_replicas(bundle, w.obj) for w in selected)
        max_unavailable, min_available = _spec(pdb).get("maxUnavailable"), _spec(pdb).get("minAvailable")
        if max_unavailable is not None and str(max_unavailable).rstrip("%") == "0":
            yield finding(
                "disruption-budget-eviction", bundle, pdb, "spec.maxUnavailable",
                "maxUnavailable 0 never allows an eviction: node drains block",
            )  # fmt: skip
        elif min_available is not None and (
            str(min_available) == "100%" or (isinstance(min_available, int) and min_available >= replicas)
        ):
            yield finding(
                "disruption-budget-eviction", bundle, pdb, "spec.minAvailable",
                f"minAvailable {min_available} with at least {replicas} replicas never allows an eviction: "
                "node drains block",
            )  # fmt: skip
