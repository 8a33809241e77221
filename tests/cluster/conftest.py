"""Helpers for the tests that run on the real control plane (tests/control_plane/).

The cluster is shared by the session, so each test deploys into namespaces of its own:
`in_namespace(bundle, ns)` moves a rendered bundle there (every namespaced object, the Namespace
itself and RoleBinding subjects). Time is real here: waits poll the real controllers.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import pytest

from llm_cost_ops_ops.bundles.model import ManifestObject, RenderedBundle
from llm_cost_ops_ops.k8s.client import Kube, load_api_client
from llm_cost_ops_ops.k8s.engine import DeployOptions
from llm_cost_ops_ops.k8s.wait import WaitTiming
from tests.control_plane.harness import ControlPlane

OPTIONS = DeployOptions(rollout=WaitTiming(90, 0.5), database=WaitTiming(90, 0.5))


def in_namespace(
    bundle: RenderedBundle, namespace: str, edit: Callable[[dict], dict | None] | None = None
) -> RenderedBundle:
    """`bundle` moved into `namespace`, each object passed through `edit` (None drops it)."""
    old = bundle.namespaces()[0]
    objects = []
    for obj in bundle.objects:
        body = copy.deepcopy(obj.body)
        meta = body.setdefault("metadata", {})
        if body["kind"] == "Namespace" and meta.get("name") == old:
            meta["name"] = namespace
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = namespace
        elif meta.get("namespace") == old:
            meta["namespace"] = namespace
        for subject in body.get("subjects") or []:
            if subject.get("namespace") == old:
                subject["namespace"] = namespace
        body = edit(body) if edit else body
        if body is not None:
            objects.append(ManifestObject(body, obj.source))
    return RenderedBundle.from_objects(bundle.environment, objects)


def with_api_image(bundle: RenderedBundle, tag: str) -> RenderedBundle:
    """The API Deployment's app container at `tag` (same repository)."""

    def edit(body: dict) -> dict:
        if body["kind"] == "Deployment" and body["metadata"]["name"] == "llm-cost-ops":
            container = body["spec"]["template"]["spec"]["containers"][0]
            container["image"] = container["image"].rsplit(":", 1)[0] + f":{tag}"
        return body

    return in_namespace(bundle, bundle.namespaces()[0], edit)


@pytest.fixture
def kube(cluster_kubeconfig) -> Kube:
    return Kube(load_api_client(str(cluster_kubeconfig)))


@pytest.fixture
def admin(control_plane: ControlPlane):
    """A raw official-client ApiClient with system:masters rights, for setup and inspection."""
    with control_plane.api_client(admin=True) as api:
        yield api


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 60.0, poll: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout:.0f} s")
        time.sleep(poll)
