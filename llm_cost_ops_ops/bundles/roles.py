"""The platform's parts found by what they are, not by their names.

A tree this project did not write may prefix, suffix or rename every object; the API Deployment is
still the Deployment that runs the `llm-cost-ops` image, its HPA still scales it, its ConfigMap is
still the one its containers read. `RoleLookup.find(role)` identifies each part from kinds, labels,
images, selectors and the references between objects, and says what it looked for when it finds
none (or several). `objects.roles` in environments.yaml names an object where a tree is ambiguous.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from ..environments import EnvironmentSpec
from .images import image_repository
from .model import ManifestObject, RenderedBundle
from .platform import API_APP, COMPONENT_LABEL, DATABASE_APP, NAME_LABEL
from .selectors import is_empty_selector, selector_matches

ROLES = ("api", "database", "autoscaler", "disruption-budget", "config", "secret", "prometheus", "grafana")
_KINDS = {
    "api": "Deployment",
    "database": "StatefulSet",
    "autoscaler": "HorizontalPodAutoscaler",
    "disruption-budget": "PodDisruptionBudget",
    "config": "ConfigMap",
    "secret": "Secret",
    "prometheus": "Deployment",
    "grafana": "Deployment",
}
# Workload roles: the pod labels and the image (last path component) that identify each.
_WORKLOADS = {
    "api": ({COMPONENT_LABEL: "api", NAME_LABEL: API_APP}, API_APP),
    "database": ({COMPONENT_LABEL: "database", NAME_LABEL: DATABASE_APP}, DATABASE_APP),
    "prometheus": ({NAME_LABEL: "prometheus"}, "prometheus"),
    "grafana": ({NAME_LABEL: "grafana"}, "grafana"),
}


@dataclass(frozen=True)
class Found:
    """The object playing a role (or None), the name it goes by, and what was looked for."""

    role: str
    obj: ManifestObject | None
    looked_for: str
    name: str = ""  # a referenced object's name even when the bundle does not ship it (the Secret)
    candidates: tuple[str, ...] = ()

    @property
    def missing(self) -> str:
        """What to say when the role is not identified: never "missing" for an object that is there."""
        if len(self.candidates) > 1:
            return (
                f"cannot tell which of {', '.join(self.candidates)} is the {self.role} "
                f"({self.looked_for}); name it in environments.yaml under objects.roles.{self.role}"
            )
        return f"found no {_KINDS[self.role]} playing the {self.role} role (looked for {self.looked_for})"


def pod_labels(obj: ManifestObject) -> dict[str, str]:
    found = obj.pod_template()
    return ((found[1].get("metadata") or {}).get("labels") or {}) if found else {}


class RoleLookup:
    """Find the platform's parts in one bundle; `find` is the one entry point."""

    def __init__(self, bundle: RenderedBundle, spec: EnvironmentSpec):
        self.bundle, self.spec = bundle, spec
        self._cache: dict[str, Found] = {}

    def find(self, role: str) -> Found:
        if role not in self._cache:
            named = self.spec.objects.roles.get(role)
            if named is not None:
                obj = self.bundle.find(_KINDS[role], named)
                self._cache[role] = Found(role, obj, f"{_KINDS[role]} {named} (objects.roles)", named)
            else:
                self._cache[role] = getattr(self, "_" + role.replace("-", "_"))()
        return self._cache[role]

    def _one(self, role: str, matches: list[ManifestObject], looked_for: str) -> Found:
        if len(matches) == 1:
            return Found(role, matches[0], looked_for, matches[0].name)
        return Found(role, None, looked_for, candidates=tuple(o.ref for o in matches))

    def _workload(self, role: str) -> Found:
        labels, image = _WORKLOADS[role]
        kind = _KINDS[role]
        pool = self.bundle.of_kind(kind)
        by_labels = [o for o in pool if all(pod_labels(o).get(k) == v for k, v in labels.items())]
        by_image = [
            o for o in pool if any(image_repository(c.get("image", "")).rsplit("/", 1)[-1] == image
                                   for _, c in o.containers())
        ]  # fmt: skip
        wanted = ", ".join(f"{k}={v}" for k, v in labels.items())
        looked_for = f"a {kind} with pod labels {wanted}, or running the {image} image"
        return self._one(role, by_labels or by_image, looked_for)

    def _api(self) -> Found:
        return self._workload("api")

    def _database(self) -> Found:
        return self._workload("database")

    def _prometheus(self) -> Found:
        return self._workload("prometheus")

    def _grafana(self) -> Found:
        return self._workload("grafana")

    @cached_property
    def _api_obj(self) -> ManifestObject | None:
        return self.find("api").obj

    def _autoscaler(self) -> Found:
        api = self._api_obj
        looked_for = "a HorizontalPodAutoscaler whose scaleTargetRef is the API Deployment"
        matches = [
            h for h in self.bundle.of_kind("HorizontalPodAutoscaler")
            if api is not None
            and ((h.body.get("spec") or {}).get("scaleTargetRef") or {}).get("kind") == api.kind
            and ((h.body.get("spec") or {}).get("scaleTargetRef") or {}).get("name") == api.name
        ]  # fmt: skip
        if not matches and len(self.bundle.of_kind("HorizontalPodAutoscaler")) == 1:
            # The only HPA of the bundle, whatever it targets (the references check judges that).
            matches = self.bundle.of_kind("HorizontalPodAutoscaler")
        return self._one("autoscaler", matches, looked_for)

    def _disruption_budget(self) -> Found:
        labels = pod_labels(self._api_obj) if self._api_obj else None
        looked_for = "a PodDisruptionBudget whose selector matches the API pods"
        matches = []
        for pdb in self.bundle.of_kind("PodDisruptionBudget"):
            selector = (pdb.body.get("spec") or {}).get("selector")
            if labels is not None and not is_empty_selector(selector) and selector_matches(selector, labels):
                matches.append(pdb)
        return self._one("disruption-budget", matches, looked_for)

    def _api_env_from(self, key: str) -> list[str]:
        if self._api_obj is None:
            return []
        names = []
        for path, container in self._api_obj.containers():
            if "initContainers" not in path:
                for source in container.get("envFrom") or []:
                    name = (source.get(key) or {}).get("name")
                    if name and name not in names:
                        names.append(name)
        return names

    def _config(self) -> Found:
        looked_for = "a ConfigMap the API's containers read through envFrom"
        shipped = [o for n in self._api_env_from("configMapRef") if (o := self.bundle.find("ConfigMap", n))]
        if len(shipped) > 1:  # the one holding the settings environments.yaml names
            keys = set(self.spec.config)
            best = max(len(keys & set(o.body.get("data") or {})) for o in shipped)
            shipped = [o for o in shipped if len(keys & set(o.body.get("data") or {})) == best]
        return self._one("config", shipped, looked_for)

    def _secret(self) -> Found:
        looked_for = "a Secret the API's containers read through envFrom"
        names = self._api_env_from("secretRef")
        if len(names) != 1:
            return Found("secret", None, looked_for, candidates=tuple(f"Secret/{n}" for n in names))
        return Found("secret", self.bundle.find("Secret", names[0]), looked_for, names[0])
