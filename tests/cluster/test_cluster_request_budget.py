"""What a no-op redeploy of dev costs the API server (issue 16, item 7), counted from the real
kube-apiserver's audit log for the run's user while the whole `deploy_dev` job runs in process
(bundle checks, the deployed asset with its direct-mode migration wave, the drift check).

Cases:
- the second, no-op run of deploy_dev dry-runs each bundle object at most twice (in fact once:
  one plan under the Lease, which the drift check reuses), asks for every discovery document
  (/api, /apis, /apis/<group>/<version>) at most once in the run although the deploy step, the
  migration wave and the drift check each connect, and never lists Namespaces cluster-wide;
- the drift check of that run is evaluated and clean, and one run later, after another field
  manager changed the API's image, the drift_check_dev job (its own run, its own dry-runs)
  still reports it: reusing the plan did not turn the check into a formality;
- the drift a deploy measures (drift_after_deploy: its plan, and its apply responses for what it
  wrote) is the drift a fresh dry-run of every object finds right after, for a no-op redeploy and
  for one that writes, with another manager's environment variable in the API container.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest

from llm_cost_ops_ops import definitions
from llm_cost_ops_ops.defs.bundles import bundle_definitions
from llm_cost_ops_ops.defs.deploy import deploy_definitions
from llm_cost_ops_ops.defs.drift import drift_definitions
from llm_cost_ops_ops.defs.kubernetes import KubernetesResource
from llm_cost_ops_ops.defs.resources import BundleIOManager, PlatformManifests
from llm_cost_ops_ops.environments import load_environments
from llm_cost_ops_ops.k8s.client import Kube, load_api_client
from llm_cost_ops_ops.k8s.drift import detect_drift, drift_after_deploy
from llm_cost_ops_ops.k8s.releases import ReleaseRequest, execute_release
from tests.cluster.conftest import OPTIONS, in_namespace, with_api_image
from tests.control_plane.harness import AuditEvent

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

DEPLOY = {"ops": {"dev_deployed": {"config": {"mode": "apply", "rollout_deadline_seconds": 90}}}}
DISCOVERY_PREFIXES = ("/api", "/version", "/openapi")


def _tree(project_root: Path, target: Path, namespace: str) -> Path:
    shutil.copytree(project_root / "manifests", target / "manifests")
    shutil.copytree(project_root / "migrations", target / "migrations")
    shutil.copy(project_root / "environments.yaml", target / "environments.yaml")
    for path in [target / "environments.yaml", *(target / "manifests").rglob("*.yaml")]:
        path.write_text(path.read_text().replace("llm-cost-ops-dev", namespace))
    return target


def _discovery(events: list[AuditEvent]) -> Counter[str]:
    return Counter(
        e.uri.split("?")[0] for e in events if not e.resource and e.uri.startswith(DISCOVERY_PREFIXES)
    )


def _drift(result) -> dg.AssetCheckEvaluation:
    (evaluation,) = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
        and e.event_specific_data.check_name == "drift"
    ]
    return evaluation


@pytest.fixture
def dev_job(tmp_path, project_root, cluster_kubeconfig, cluster_namespace, pg_database, monkeypatch):
    root = _tree(project_root, tmp_path / "project", cluster_namespace)
    monkeypatch.setenv("LLM_COST_OPS_OPS_DEV_DATABASE_URL", pg_database)
    specs = load_environments(root / "environments.yaml")
    spec = specs["dev"].model_copy(
        update={"deploy": specs["dev"].deploy.model_copy(update={"poll_seconds": 0.5})}
    )
    defs = dg.Definitions.merge(
        bundle_definitions(spec),
        deploy_definitions(spec, {**specs, "dev": spec}),
        drift_definitions(spec),
        dg.Definitions(
            executor=dg.in_process_executor,
            resources={
                **definitions.defs.resources,
                "manifests": PlatformManifests(project_dir=str(root)),
                "bundle_io_manager": BundleIOManager(),
                "kubernetes": KubernetesResource(kubeconfig=str(cluster_kubeconfig)),
            },
        ),
    )
    with dg.instance_for_test() as instance:
        yield defs, instance


def test_a_no_op_redeploy_plans_once_and_discovers_once(control_plane, dev_job, cluster_namespace):
    defs, instance = dev_job
    deploy = defs.resolve_job_def("deploy_dev")
    assert deploy.execute_in_process(run_config=DEPLOY, instance=instance).success
    mark = control_plane.audit_mark()

    again = deploy.execute_in_process(run_config=DEPLOY, instance=instance)

    assert again.success
    events = control_plane.audit(mark)
    dry_runs = Counter((e.resource, e.namespace, e.name) for e in events if e.dry_run)
    assert dry_runs, "the no-op run dry-ran nothing"
    assert max(dry_runs.values()) <= 2, {k: v for k, v in dry_runs.items() if v > 2}
    assert max(dry_runs.values()) == 1  # one plan under the Lease; the drift check reuses it
    assert not [e for e in events if e.is_write and e.resource != "leases"]
    discovery = _discovery(events)
    assert discovery, "no discovery at all: the audit log was not read"
    assert {uri: n for uri, n in discovery.items() if n > 1} == {}
    assert not [e for e in events if e.resource == "namespaces" and e.verb in ("list", "watch")]
    assert not [e for e in events if e.verb == "list" and not e.namespace], "a cluster-wide list"
    drift = _drift(again)
    assert drift.passed and drift.metadata["evaluated"].value is True


def test_the_drift_job_still_sees_another_managers_change(
    control_plane, dev_job, cluster_kubeconfig, cluster_namespace
):
    defs, instance = dev_job
    namespace = cluster_namespace
    assert defs.resolve_job_def("deploy_dev").execute_in_process(run_config=DEPLOY, instance=instance).success
    other = Kube(load_api_client(str(cluster_kubeconfig)), field_manager="kubectl-edit")
    live = other.get("apps/v1", "Deployment", "llm-cost-ops", namespace)
    container = live["spec"]["template"]["spec"]["containers"][0]
    other.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "llm-cost-ops", "namespace": namespace},
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": container["name"], "image": "example.org/other:1"}]}
                }
            },
        },
        force=True,
    )
    mark = control_plane.audit_mark()

    result = defs.resolve_job_def("drift_check_dev").execute_in_process(instance=instance)

    drift = _drift(result)
    assert not drift.passed and drift.metadata["evaluated"].value is True
    assert "image" in drift.metadata["drifted_objects"].value
    assert any(e.dry_run for e in control_plane.audit(mark))  # its own comparison, not a reused one


def test_the_drift_a_deploy_measures_is_what_a_fresh_dry_run_finds(
    kube, cluster_kubeconfig, render_overlays, cluster_namespace
):
    dev = in_namespace(render_overlays["dev"], cluster_namespace)

    def deploy(bundle, run_id):
        request = ReleaseRequest.for_bundle(bundle, cluster_namespace, run_id, OPTIONS)
        return execute_release(kube, request)

    deploy(dev, "run-1")
    other = Kube(load_api_client(str(cluster_kubeconfig)), field_manager="kubectl-set")
    other.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "llm-cost-ops", "namespace": cluster_namespace},
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "llm-cost-ops", "env": [{"name": "DEBUG_BACKDOOR", "value": "1"}]}
                        ]
                    }
                }
            },
        }
    )
    added = "spec.template.spec.containers[llm-cost-ops].env[DEBUG_BACKDOOR] (added by kubectl-set)"

    for bundle, run_id, writes in [(dev, "run-2", 0), (with_api_image(dev, "1.5.0"), "run-3", 1)]:
        result, release = deploy(bundle, run_id)
        assert result.writes == writes

        measured = drift_after_deploy(kube, "dev", release, result)
        fresh = detect_drift(kube, "dev", cluster_namespace, release)

        assert measured is not None
        assert [(d.ref, d.fields) for d in measured.drifted] == [(d.ref, d.fields) for d in fresh.drifted]
        assert (measured.checked, measured.skipped) == (fresh.checked, fresh.skipped)
        assert [d.fields for d in measured.drifted] == [[added]], run_id
