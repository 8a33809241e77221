"""The remediation loop and drift on the real control plane: whole Dagster jobs run in process, the
rollout sensor ticks against the real API server's lists, the real Deployment controller rolls out,
KWOK's pods crash-loop, and smoke checks talk to the application stub.

Each test runs staging in a namespace of its own (a copy of the tree with the namespace renamed).

Cases:
- deploy_staging of 1.4.2 passes its smoke checks; deploy_staging of an image that crash-loops fails
  in the deployed step; the rollout sensor requests exactly one rollback_staging run; the rollback
  re-applies 1.4.2, its smoke checks pass, and the next tick requests nothing;
- drift_check_staging passes on the fresh release, then reports a ConfigMap key and a container image
  another field manager changed and a deleted Service (paths only, no values), from the real
  server's dry-run and lists.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from llm_cost_ops_ops import definitions
from llm_cost_ops_ops.defs.bundles import bundle_definitions
from llm_cost_ops_ops.defs.deploy import deploy_definitions
from llm_cost_ops_ops.defs.kubernetes import KubernetesResource
from llm_cost_ops_ops.defs.notify import NotifierResource, notification_definitions
from llm_cost_ops_ops.defs.resources import BundleIOManager, PlatformManifests
from llm_cost_ops_ops.defs.sensors import sensor_definitions
from llm_cost_ops_ops.defs.smoke import SmokeResource, smoke_after_rollback, smoke_definitions
from llm_cost_ops_ops.environments import load_environments
from llm_cost_ops_ops.k8s.client import Kube, load_api_client
from tests.app_stub import AppStub
from tests.environment_files import write_environment
from tests.webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.cluster, pytest.mark.e2e, pytest.mark.slow]

MIGRATION = 20250101000001
DEPLOY = {"ops": {"staging_deployed": {"config": {"mode": "apply", "rollout_deadline_seconds": 60}}}}
SMOKE_CHECKS = {
    "health",
    "ready",
    "live",
    "info_version",
    "metrics",
    "read_api",
    "database",
    "prometheus_targets",
    "grafana",
}


def _tree(project_root: Path, target: Path, namespace: str, tag: str = "") -> Path:
    shutil.copytree(project_root / "manifests", target / "manifests")
    shutil.copytree(project_root / "migrations", target / "migrations")
    shutil.copy(project_root / "environments.yaml", target / "environments.yaml")
    for path in [target / "environments.yaml", *(target / "manifests").rglob("*.yaml")]:
        path.write_text(path.read_text().replace("llm-cost-ops-staging", namespace))
    if tag:
        overlay = target / "manifests" / "overlays" / "staging" / "kustomization.yaml"
        overlay.write_text(overlay.read_text().replace('newTag: "1.4.2"', f'newTag: "{tag}"'))
    return target


def _definitions(root: Path, spec, specs, resources: dict) -> dg.Definitions:
    return dg.Definitions.merge(
        bundle_definitions(spec),
        deploy_definitions(spec, specs, after_rollback=smoke_after_rollback(spec)),
        smoke_definitions(spec),
        sensor_definitions(spec),
        notification_definitions(specs),
        dg.Definitions(
            executor=dg.in_process_executor,
            resources={
                **definitions.defs.resources,
                "manifests": PlatformManifests(project_dir=str(root)),
                "bundle_io_manager": BundleIOManager(),
                **resources,
            },
        ),
    )


@pytest.fixture
def world(tmp_path, project_root, control_plane, cluster_kubeconfig, cluster_namespace, pg_database):
    good = _tree(project_root, tmp_path / "good", cluster_namespace)
    migrations = tmp_path / "migrations"  # the database smoke check holds the ledger to these
    migrations.mkdir()
    (migrations / f"{MIGRATION}_init.sql").write_text("select 1;")
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT, "
            "installed_on TIMESTAMPTZ DEFAULT now(), success BOOLEAN, checksum BYTEA, execution_time BIGINT)"
        )
        conn.execute(
            "INSERT INTO _sqlx_migrations VALUES (%s, 'init', now(), true, '\\x00', 1)", (MIGRATION,)
        )
    bad = _tree(project_root, tmp_path / "bad", cluster_namespace, tag="1.5.0-crashloop")
    specs = load_environments(good / "environments.yaml")
    with AppStub(version="1.4.2") as stub, WebhookReceiver() as receiver, dg.instance_for_test() as instance:
        base = specs["staging"]
        spec = base.model_copy(
            update={
                "operations": base.operations.model_copy(update=stub.operations()),
                "deploy": base.deploy.model_copy(update={"poll_seconds": 0.5}),
                "migrations": base.migrations.model_copy(update={"mode": "off"}),
            }
        )
        specs = {**specs, "staging": spec}
        for tree in (good, bad):  # each tree's run reads this spec, as its definitions do
            write_environment(tree, spec)
        resources = {
            "kubernetes": KubernetesResource(kubeconfig=str(cluster_kubeconfig)),
            "smoke": SmokeResource(
                location="outside", database_url=pg_database, migrations_dir=str(migrations)
            ),
            "notifier": NotifierResource(
                webhook_url=receiver.url("/hook"), dagster_url="http://dagster:3000"
            ),
        }
        yield {
            "namespace": cluster_namespace,
            "good": _definitions(good, spec, specs, resources),
            "bad": _definitions(bad, spec, specs, resources),
            "resources": resources,
            "instance": instance,
            "kube": Kube(load_api_client(str(cluster_kubeconfig))),
            "kubeconfig": str(cluster_kubeconfig),
        }


def _checks(result) -> dict[str, bool]:
    return {
        e.event_specific_data.check_name: e.event_specific_data.passed
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    }


def _tick(world, cursor=None):
    (sensor,) = [s for s in world["good"].sensors if s.name == "rollout_health_staging"]
    resources = {k: world["resources"][k] for k in ("kubernetes", "notifier")}
    return sensor.evaluate_tick(
        dg.build_sensor_context(instance=world["instance"], cursor=cursor, resources=resources)
    )


def _api_image(world) -> str:
    live = world["kube"].get("apps/v1", "Deployment", "llm-cost-ops", world["namespace"])
    return live["spec"]["template"]["spec"]["containers"][0]["image"]


def test_crash_loop_is_rolled_back_once_and_the_next_tick_is_quiet(world, pg_database):
    instance = world["instance"]
    first = (
        world["good"]
        .resolve_job_def("deploy_staging")
        .execute_in_process(run_config=DEPLOY, instance=instance)
    )
    assert first.success
    assert {k: v for k, v in _checks(first).items() if k in SMOKE_CHECKS} == dict.fromkeys(SMOKE_CHECKS, True)

    failed = (
        world["bad"]
        .resolve_job_def("deploy_staging")
        .execute_in_process(run_config=DEPLOY, instance=instance, raise_on_error=False)
    )
    assert not failed.success
    assert [e.step_key for e in failed.get_step_failure_events()] == ["staging_deployed"]
    assert _api_image(world).endswith(":1.5.0-crashloop")

    deadline = time.monotonic() + 60
    while True:  # the real pods keep restarting until the sensor's threshold is passed
        tick = _tick(world)
        if tick.run_requests or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert len(tick.run_requests) == 1, tick.skip_message
    (request,) = tick.run_requests
    assert request.job_name == "rollback_staging"
    assert request.run_key.startswith(f"staging:Deployment/{world['namespace']}/llm-cost-ops@")

    rollback = (
        world["good"]
        .resolve_job_def(request.job_name)
        .execute_in_process(run_config=request.run_config, tags=request.tags, instance=instance)
    )

    assert rollback.success
    assert _checks(rollback) == dict.fromkeys(SMOKE_CHECKS, True)
    assert _api_image(world) == "ghcr.io/llm-cost-ops/llm-cost-ops:1.4.2"
    after = _tick(world, tick.cursor)
    assert after.run_requests == []


def test_drift_check_reports_what_another_manager_changed(world):
    instance, namespace = world["instance"], world["namespace"]
    assert (
        world["good"]
        .resolve_job_def("deploy_staging")
        .execute_in_process(run_config=DEPLOY, instance=instance)
        .success
    )
    drift_job = world["good"].resolve_job_def("drift_check_staging")
    assert _checks(drift_job.execute_in_process(instance=instance)) == {"drift": True}

    other = Kube(load_api_client(world["kubeconfig"]), field_manager="kubectl-edit")
    other.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "llm-cost-ops-config", "namespace": namespace},
            "data": {"LOG_LEVEL": "trace"},
        },
        force=True,
    )
    other.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "llm-cost-ops", "namespace": namespace},
            "spec": {"template": {"spec": {"containers": [{"name": "llm-cost-ops", "image": "evil:1"}]}}},
        },
        force=True,
    )
    other.delete("v1", "Service", "grafana", namespace)

    result = drift_job.execute_in_process(instance=instance, raise_on_error=False)

    (evaluation,) = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    assert not evaluation.passed
    table = evaluation.metadata["drifted_objects"].value
    assert f"| ConfigMap/{namespace}/llm-cost-ops-config | `data.LOG_LEVEL` |" in table
    assert "`spec.template.spec.containers[llm-cost-ops].image`" in table
    assert f"| Service/{namespace}/grafana | missing |" in table
    assert "trace" not in table and "evil" not in table
