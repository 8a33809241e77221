"""The role lookup (bundles/roles.py): the platform's parts found by what they are, not by name.

Cases:
- the API, database, Prometheus and Grafana are found by pod labels, whatever prefix or suffix
  their names carry, and by image when the tree uses labels of its own;
- the autoscaler is the HPA scaling the API, the disruption budget the PDB selecting its pods, the
  config the ConfigMap its containers read (the one holding environments.yaml's keys when several);
- two candidates: the lookup names both and says to set objects.roles; none: it says what it looked
  for and never calls an object that is there "missing";
- objects.roles names the object, and a named object absent from the bundle is not found;
- the Secret is named by the API's envFrom even when the bundle does not ship it.
"""

from __future__ import annotations

import pytest

from llm_cost_ops_ops.bundles.model import ManifestObject, RenderedBundle
from llm_cost_ops_ops.bundles.roles import RoleLookup
from llm_cost_ops_ops.environments import ObjectsSpec

pytestmark = pytest.mark.unit

NS = "team-staging"


def _workload(name, labels, image, kind="Deployment", env_from=()):
    container = {"name": "main", "image": image, "envFrom": list(env_from)}
    return ManifestObject({
        "apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": NS},
        "spec": {"template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}},
    })  # fmt: skip


def _api(name="team-api-v2", labels=None, env_from=()):
    labels = (
        {"app.kubernetes.io/name": "llm-cost-ops", "app.kubernetes.io/component": "api"}
        if labels is None
        else labels
    )
    return _workload(name, labels, "ghcr.io/llm-cost-ops/llm-cost-ops:1.4.2", env_from=env_from)


def _obj(kind, name, spec=None, data=None):
    body = {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": NS}}
    if spec is not None:
        body["spec"] = spec
    if data is not None:
        body["data"] = data
    return ManifestObject(body)


def _lookup(env_specs, *objects, roles=None):
    spec = env_specs["staging"].model_copy(
        update={"namespace": NS, "objects": ObjectsSpec(roles=roles or {})}
    )
    return RoleLookup(RenderedBundle.from_objects("staging", list(objects)), spec)


def test_workloads_are_found_by_labels_whatever_their_names(env_specs):
    db = _workload("team-db-v2", {"app.kubernetes.io/name": "postgres", "app.kubernetes.io/component": "database"},
                   "registry.local/mirror/pg:16", kind="StatefulSet")  # fmt: skip
    lookup = _lookup(env_specs, _api(), db)
    assert lookup.find("api").obj.ref == f"Deployment/{NS}/team-api-v2"
    assert lookup.find("database").obj.ref == f"StatefulSet/{NS}/team-db-v2"


def test_workloads_are_found_by_image_when_labels_are_the_trees_own(env_specs):
    api = _api(name="cost-api", labels={"app": "cost-api"})
    prometheus = _workload("scraper", {"app": "scraper"}, "quay.io/prometheus/prometheus:v2.53.0")
    grafana = _workload("dashboards", {"app": "dashboards"}, "grafana/grafana:11.1.0@sha256:" + "a" * 64)
    lookup = _lookup(env_specs, api, prometheus, grafana)
    assert [lookup.find(r).obj.name for r in ("api", "prometheus", "grafana")] == [
        "cost-api",
        "scraper",
        "dashboards",
    ]


def test_autoscaler_budget_and_config_follow_the_api(env_specs):
    api = _api(
        env_from=[{"configMapRef": {"name": "team-flags"}}, {"configMapRef": {"name": "team-settings"}}]
    )
    other = _workload("team-worker", {"app": "worker"}, "busybox:1.36")
    objects = [
        api, other,
        _obj("HorizontalPodAutoscaler", "team-worker", {"scaleTargetRef": {"kind": "Deployment", "name": "team-worker"}}),
        _obj("HorizontalPodAutoscaler", "team-api", {"scaleTargetRef": {"kind": "Deployment", "name": "team-api-v2"}}),
        _obj("PodDisruptionBudget", "team-worker", {"selector": {"matchLabels": {"app": "worker"}}}),
        _obj("PodDisruptionBudget", "team-api", {"selector": {"matchLabels": {"app.kubernetes.io/component": "api"}}}),
        _obj("ConfigMap", "team-flags", data={"FEATURE_X": "on"}),
        _obj("ConfigMap", "team-settings", data={"ENVIRONMENT": "staging", "LOG_LEVEL": "info"}),
    ]  # fmt: skip
    lookup = _lookup(env_specs, *objects)
    assert lookup.find("autoscaler").obj.name == "team-api"
    assert lookup.find("disruption-budget").obj.name == "team-api"
    assert lookup.find("config").obj.name == "team-settings"


def test_two_candidates_are_named_with_the_way_out(env_specs):
    lookup = _lookup(env_specs, _api("blue-api"), _api("green-api"))
    found = lookup.find("api")
    assert found.obj is None
    assert found.missing == (
        f"cannot tell which of Deployment/{NS}/blue-api, Deployment/{NS}/green-api is the api "
        "(a Deployment with pod labels app.kubernetes.io/component=api, app.kubernetes.io/name=llm-cost-ops, "
        "or running the llm-cost-ops image); name it in environments.yaml under objects.roles.api"
    )


def test_none_found_says_what_it_looked_for_and_never_missing(env_specs):
    found = _lookup(env_specs, _api()).find("grafana")
    assert found.obj is None
    assert found.missing.startswith("found no Deployment playing the grafana role (looked for ")
    assert "grafana image" in found.missing and "missing" not in found.missing


def test_objects_roles_names_the_object(env_specs):
    lookup = _lookup(env_specs, _api("blue-api"), _api("green-api"), roles={"api": "green-api"})
    assert lookup.find("api").obj.name == "green-api"
    absent = _lookup(env_specs, _api("blue-api"), roles={"api": "green-api"}).find("api")
    assert absent.obj is None and absent.name == "green-api"
    assert "Deployment green-api (objects.roles)" in absent.missing


def test_secret_is_named_by_envfrom_even_when_not_shipped(env_specs):
    found = _lookup(env_specs, _api(env_from=[{"secretRef": {"name": "team-secrets"}}])).find("secret")
    assert (found.obj, found.name) == (None, "team-secrets")
