"""A rendered bundle: the objects of one environment, their canonical text and its digest."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Kinds that hold a pod template, and where it sits in the object.
POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


HELM_TEMPLATE_SUFFIX = " (Helm template)"
"""Ends the source of an object a Helm chart rendered (`<chart>/templates/<file> (Helm template)`)."""


@dataclass(frozen=True)
class ManifestObject:
    """One Kubernetes object of a bundle, with the source file kustomize read it from."""

    body: dict[str, Any]
    source: str = ""

    @property
    def from_helm_template(self) -> bool:
        """Rendered by Helm from a template: its source is generated, not a file to re-read."""
        return self.source.endswith(HELM_TEMPLATE_SUFFIX)

    @property
    def api_version(self) -> str:
        return str(self.body.get("apiVersion", ""))

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def name(self) -> str:
        return str(self.body.get("metadata", {}).get("name", ""))

    @property
    def namespace(self) -> str:
        return str(self.body.get("metadata", {}).get("namespace") or "")

    @property
    def labels(self) -> dict[str, str]:
        return self.body.get("metadata", {}).get("labels") or {}

    @property
    def ref(self) -> str:
        """`Kind/namespace/name`, or `Kind/name` for cluster-scoped objects."""
        parts = [self.kind, self.namespace, self.name] if self.namespace else [self.kind, self.name]
        return "/".join(parts)

    def pod_template(self) -> tuple[str, dict[str, Any]] | None:
        """The pod template and its field path, for kinds that run pods."""
        path = POD_TEMPLATE_PATHS.get(self.kind)
        if path is None:
            return None
        node: Any = self.body
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        return (".".join(path), node) if isinstance(node, dict) else None

    def containers(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every init and regular container of the pod template, with its field path."""
        found = self.pod_template()
        if found is None:
            return
        prefix, template = found
        spec = template.get("spec") or {}
        for key in ("initContainers", "containers"):
            for index, container in enumerate(spec.get(key) or []):
                yield f"{prefix}.spec.{key}[{index}]", container


@dataclass(frozen=True)
class RenderedBundle:
    """The rendered objects of one environment and the sha256 digest of their canonical text."""

    environment: str
    objects: tuple[ManifestObject, ...]
    text: str
    digest: str
    warnings: tuple[str, ...] = field(default=())
    # The tree's `images:` entries, each with the kustomization `file` that declares it.
    image_entries: tuple[dict[str, str], ...] = field(default=())

    @classmethod
    def from_objects(
        cls,
        environment: str,
        objects: list[ManifestObject],
        warnings: tuple[str, ...] = (),
        image_entries: tuple[dict[str, str], ...] = (),
    ) -> RenderedBundle:
        text = canonical_text([obj.body for obj in objects])
        return cls(environment, tuple(objects), text, digest_of(text), warnings, image_entries)

    @classmethod
    def from_text(cls, environment: str, text: str) -> RenderedBundle:
        """A bundle from stored canonical text (a release's bundle, say); sources are unknown."""
        objects = tuple(ManifestObject(body) for body in load_documents(text))
        return cls(environment, objects, text, digest_of(text))

    def counts_by_kind(self) -> dict[str, int]:
        return dict(sorted(Counter(obj.kind for obj in self.objects).items()))

    def images(self) -> list[str]:
        return sorted({c["image"] for obj in self.objects for _, c in obj.containers() if c.get("image")})

    def namespaces(self) -> list[str]:
        return sorted({obj.namespace for obj in self.objects if obj.namespace})

    def find(self, kind: str, name: str) -> ManifestObject | None:
        return next((o for o in self.objects if o.kind == kind and o.name == name), None)

    def of_kind(self, *kinds: str) -> list[ManifestObject]:
        return [obj for obj in self.objects if obj.kind in kinds]


def canonical_text(bodies: list[dict[str, Any]]) -> str:
    """Deterministic YAML for a list of objects: the same objects always give the same bytes."""
    return yaml.dump_all(bodies, Dumper=_Dumper, sort_keys=True, default_flow_style=False)


def digest_of(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def load_documents(text: str) -> list[Any]:
    return [doc for doc in yaml.load_all(text, Loader=_Loader) if doc is not None]
