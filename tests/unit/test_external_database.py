"""Environments on an external PostgreSQL (database.external; llm_cost_ops_ops.bundles.external_database,
the contract's database clause, PlatformManifests.render).

Cases:
- every environment rendered with external: true has no object of the database component: no postgres
  StatefulSet, Service, PersistentVolumeClaim, ConfigMap, NetworkPolicy or ServiceAccount; everything
  else is kept unchanged;
- that bundle passes the schema, policy and contract checks (no error finding);
- the deploy waves of that bundle keep a database wave, empty;
- external: false leaves the bundle as rendered (same digest), and the contract still requires the
  StatefulSet there;
- external_cidr adds one NetworkPolicy: egress from the application's pods to that range on
  external_port, with the overlay's labels and namespace; it passes the checks too;
- a bundle for an external environment that still holds the postgres StatefulSet fails the contract;
- the spec: storage and memory may be left out only when external; external_cidr needs external: true
  and a valid network; backups from the postgres pod (pod-exec) need the in-cluster database;
- PlatformManifests.render applies it: an environments.yaml with external: true renders without the
  database component.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pydantic
import pytest
import yaml

from llm_cost_ops_ops.bundles.contract import check_contract
from llm_cost_ops_ops.bundles.external_database import EGRESS_POLICY, for_database_mode
from llm_cost_ops_ops.bundles.findings import errors
from llm_cost_ops_ops.defs.resources import PlatformManifests
from llm_cost_ops_ops.environments import DatabaseSpec, EnvironmentSpec
from llm_cost_ops_ops.k8s.inventory import object_key
from llm_cost_ops_ops.k8s.waves import plan_waves

pytestmark = pytest.mark.unit

ENVIRONMENTS = ("dev", "staging", "prod")
COMPONENT = "app.kubernetes.io/component"


def _external(spec: EnvironmentSpec, **database) -> EnvironmentSpec:
    return spec.model_copy(update={"database": DatabaseSpec(external=True, **database)})


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_external_bundle_has_no_database_component(render_overlays, env_specs, env):
    rendered = render_overlays[env]
    bundle = for_database_mode(rendered, _external(env_specs[env]))
    assert not [o.ref for o in bundle.objects if o.labels.get(COMPONENT) == "database"]
    for kind in ("StatefulSet", "Service", "PersistentVolumeClaim", "ConfigMap", "NetworkPolicy"):
        assert not [o for o in bundle.objects if o.kind == kind and o.name.startswith("postgres")], kind
    assert bundle.find("ServiceAccount", "llm-cost-ops-postgres") is None
    dropped = {o.ref for o in rendered.objects} - {o.ref for o in bundle.objects}
    assert dropped >= {
        f"StatefulSet/{env_specs[env].namespace}/postgres",
        f"Service/{env_specs[env].namespace}/postgres",
        f"PersistentVolumeClaim/{env_specs[env].namespace}/postgres-backup",
        f"NetworkPolicy/{env_specs[env].namespace}/postgres",
    }
    kept = {o.ref: o.body for o in rendered.objects if o.ref not in dropped}
    assert kept == {o.ref: o.body for o in bundle.objects}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_external_bundle_passes_every_check(render_overlays, env_specs, all_findings, env):
    spec = _external(env_specs[env])
    assert errors(all_findings(for_database_mode(render_overlays[env], spec), spec)) == []


def test_database_wave_is_empty(render_overlays, env_specs):
    bundle = for_database_mode(render_overlays["prod"], _external(env_specs["prod"]))
    waves = dict((wave.name, members) for wave, members in plan_waves(o.body for o in bundle.objects))
    assert waves["database"] == []
    assert [o["metadata"]["name"] for o in waves["api"]] == ["llm-cost-ops"]


def test_in_cluster_database_is_unchanged(render_overlays, env_specs):
    bundle = for_database_mode(render_overlays["dev"], env_specs["dev"])
    assert bundle.digest == render_overlays["dev"].digest
    without = for_database_mode(render_overlays["dev"], _external(env_specs["dev"]))
    findings = check_contract(without, env_specs["dev"])
    assert [(f.rule, f.message) for f in findings] == [
        (
            "database",
            "found no StatefulSet playing the database role (looked for a StatefulSet with pod labels "
            "app.kubernetes.io/component=database, app.kubernetes.io/name=postgres, or running the postgres image)",
        )
    ]


def test_external_cidr_adds_an_egress_policy(render_overlays, env_specs, all_findings):
    spec = _external(env_specs["staging"], external_cidr="10.20.0.0/16", external_port=6432)
    bundle = for_database_mode(render_overlays["staging"], spec)
    policy = bundle.find("NetworkPolicy", EGRESS_POLICY)
    assert policy is not None
    assert policy.namespace == spec.namespace
    assert policy.labels["llm-cost-ops-ops/environment"] == "staging"
    assert policy.labels["app.kubernetes.io/part-of"] == "llm-cost-ops"
    assert policy.body["spec"] == {
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "llm-cost-ops"}},
        "policyTypes": ["Egress"],
        "egress": [
            {"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}], "ports": [{"protocol": "TCP", "port": 6432}]}
        ],
    }
    assert errors(all_findings(bundle, spec)) == []
    keys = [object_key(o.body) for o in bundle.objects]
    assert len(keys) == len(set(keys))


def test_contract_refuses_a_database_left_in(render_overlays, env_specs):
    findings = check_contract(render_overlays["prod"], _external(env_specs["prod"]))
    assert [(f.rule, f.object_ref) for f in findings] == [
        ("database", "StatefulSet/llm-cost-ops-prod/postgres")
    ]
    assert "database.external is true for prod" in findings[0].message


def test_spec_sizes_required_only_in_cluster():
    assert DatabaseSpec(external=True).memory is None
    with pytest.raises(pydantic.ValidationError, match="storage\n  Field required"):
        DatabaseSpec(memory={"request": "1Gi", "limit": "2Gi"})
    with pytest.raises(pydantic.ValidationError, match="external_cidr needs external: true"):
        DatabaseSpec(storage="1Gi", memory={"request": "1Gi", "limit": "2Gi"}, external_cidr="10.0.0.0/8")
    with pytest.raises(pydantic.ValidationError, match="does not appear to be an IPv4 or IPv6 network"):
        DatabaseSpec(external=True, external_cidr="10.0.0/8")


def test_pod_exec_backups_need_the_in_cluster_database(env_specs):
    body = env_specs["dev"].model_dump()
    body["database"] = {"external": True}
    body["backups"]["source"] = "pod-exec"
    with pytest.raises(pydantic.ValidationError, match="pod-exec needs the in-cluster database"):
        EnvironmentSpec.model_validate(body)


def test_platform_manifests_render_drops_the_database(project_root, tmp_path: Path):
    shutil.copytree(project_root / "manifests", tmp_path / "manifests")
    data = yaml.safe_load((project_root / "environments.yaml").read_text())
    data["environments"]["dev"]["database"] = {"external": True, "external_cidr": "192.0.2.10/32"}
    (tmp_path / "environments.yaml").write_text(yaml.safe_dump(data))
    bundle = PlatformManifests(project_dir=str(tmp_path)).render("dev")
    assert bundle.find("StatefulSet", "postgres") is None
    assert bundle.find("NetworkPolicy", EGRESS_POLICY) is not None
