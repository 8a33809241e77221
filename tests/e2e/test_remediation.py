"""After the deploy, end to end: a crash-looping deploy is noticed, rolled back, smoke-tested and
reported. Whole jobs run in process against the API-server double (controllers stepped by every
workload read, so each poll advances the cluster one step), the application stub for the smoke
tests, a throwaway PostgreSQL holding the migration ledger, and a local webhook receiver.

Cases:
- deploy_staging applies 1.4.2; its blocking smoke checks on staging_deployed (probes, version,
  metrics, read API, database, Prometheus targets, Grafana) all pass;
- deploy_staging of 1.5.0, whose image crash-loops, fails in the deployed step; the run-failure
  sensor posts environment, job, failing step, a CrashLoopBackOff summary and the run link;
- the rollout sensor requests exactly one rollback_staging run for the failing revision; that run
  re-applies 1.4.2 and ends with the smoke step, whose checks pass against the stub and are recorded
  on staging_deployed; the next tick finds nothing to do;
- the smoke_test_staging job alone fails when the stub reports another version, naming both;
- drift: the drift_check_staging job passes on the fresh release, then reports the ConfigMap key
  and the container image another field manager changed (paths only) and a deleted Service.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from kubernetes import client

from llm_cost_ops_ops import definitions
from llm_cost_ops_ops.defs.bundles import bundle_definitions
from llm_cost_ops_ops.defs.deploy import deploy_definitions
from llm_cost_ops_ops.defs.kubernetes import KubernetesResource
from llm_cost_ops_ops.defs.notify import NotifierResource, notification_definitions
from llm_cost_ops_ops.defs.resources import BundleIOManager, PlatformManifests
from llm_cost_ops_ops.defs.sensors import sensor_definitions
from llm_cost_ops_ops.defs.smoke import SmokeResource, smoke_after_rollback, smoke_definitions
from llm_cost_ops_ops.k8s.client import Kube
from tests.app_stub import AppStub
from tests.environment_files import write_environment
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

NS = "llm-cost-ops-staging"
MIGRATION = 20250101000001
WORKLOAD_READ = re.compile(r"/(deployments|statefulsets)(/|$)")
DEPLOY = {"ops": {"staging_deployed": {"config": {"mode": "apply", "rollout_deadline_seconds": 30}}}}


def _definitions(root: Path, spec, specs, resources: dict) -> dg.Definitions:
    """What definitions.py assembles once the lead adds these factories, for staging."""
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
def world(tmp_path, project_root, env_specs, k8s_server, k8s_controllers, k8s_kubeconfig, pg_database):
    """Staging pointed at the stub, the double stepping its controllers on workload reads."""

    def controllers_on_read(request):
        if request.method == "GET" and WORKLOAD_READ.search(request.path):
            k8s_controllers.step()
        return None

    k8s_server.inject(controllers_on_read)
    migrations = tmp_path / "migrations"
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
    copy = tmp_path / "project"
    shutil.copytree(project_root / "manifests", copy / "manifests")
    shutil.copy(project_root / "environments.yaml", copy / "environments.yaml")
    overlay = copy / "manifests" / "overlays" / "staging" / "kustomization.yaml"
    overlay.write_text(overlay.read_text().replace('newTag: "1.4.2"', 'newTag: "1.5.0"'))
    with AppStub(version="1.4.2") as stub, WebhookReceiver() as receiver, dg.instance_for_test() as instance:
        base = env_specs["staging"]
        spec = base.model_copy(
            update={
                "operations": base.operations.model_copy(update=stub.operations()),
                "deploy": base.deploy.model_copy(update={"poll_seconds": 0.005}),
                # The double runs no migration Job; this test is about rollouts, not schemas.
                "migrations": base.migrations.model_copy(update={"mode": "off"}),
            }
        )
        specs = {**env_specs, "staging": spec}
        write_environment(copy, spec)  # the bad tree's run reads this spec, as its definitions do
        resources = {
            "kubernetes": KubernetesResource(kubeconfig=str(k8s_kubeconfig), backoff_initial_seconds=0.01),
            "smoke": SmokeResource(
                location="outside", database_url=pg_database, migrations_dir=str(migrations)
            ),
            "notifier": NotifierResource(
                webhook_url=receiver.url("/hook"), dagster_url="http://dagster:3000"
            ),
        }
        yield {
            "spec": spec,
            "good": _definitions(project_root, spec, specs, resources),
            "bad": _definitions(copy, spec, specs, resources),
            "resources": resources,
            "instance": instance,
            "stub": stub,
            "receiver": receiver,
            "server": k8s_server,
            "sim": k8s_controllers,
        }


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {
        e.event_specific_data.check_name: e.event_specific_data.passed
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
        and e.event_specific_data.asset_key == dg.AssetKey("staging_deployed")
    }


def _live_image(server) -> str:
    return server.read("apps/v1", "Deployment", "llm-cost-ops", NS)["spec"]["template"]["spec"]["containers"][
        0
    ]["image"]


def _notify_failure(world, result) -> None:
    (sensor,) = [s for s in world["good"].sensors if s.name == "notify_run_failures"]
    instance = world["instance"]
    event = instance.get_records_for_run(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records[0]
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=event.event_log_entry.dagster_event,
        resources={"notifier": world["resources"]["notifier"]},
    ).for_run_failure()
    sensor(context)


def _tick(world, cursor=None):
    (sensor,) = [s for s in world["good"].sensors if s.name == "rollout_health_staging"]
    resources = {k: world["resources"][k] for k in ("kubernetes", "notifier")}
    return sensor.evaluate_tick(
        dg.build_sensor_context(instance=world["instance"], cursor=cursor, resources=resources)
    )


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


def test_crash_looping_deploy_is_rolled_back_smoke_tested_and_reported(world):
    instance, server, sim = world["instance"], world["server"], world["sim"]
    first = (
        world["good"]
        .resolve_job_def("deploy_staging")
        .execute_in_process(run_config=DEPLOY, instance=instance)
    )
    assert first.success
    checks = _checks(first)
    assert checks == {**dict.fromkeys(SMOKE_CHECKS, True), "drift": True}

    sim.fail_image("llm-cost-ops:1.5.0", "crashloop")
    failed = (
        world["bad"]
        .resolve_job_def("deploy_staging")
        .execute_in_process(run_config=DEPLOY, instance=instance, raise_on_error=False)
    )
    assert not failed.success
    assert [e.step_key for e in failed.get_step_failure_events()] == ["staging_deployed"]
    _notify_failure(world, failed)
    (message,) = world["receiver"].bodies("/hook")
    assert (message["environment"], message["job"], message["step"]) == (
        "staging",
        "deploy_staging",
        "staging_deployed",
    )
    assert (
        "CrashLoopBackOff" in message["summary"]
        and message["link"] == f"http://dagster:3000/runs/{failed.run_id}"
    )

    for _ in range(4):  # time passes: the new revision's pods keep restarting
        sim.step()
    tick = _tick(world)
    (request,) = tick.run_requests
    assert request.job_name == "rollback_staging"
    assert request.run_key.startswith("staging:Deployment/llm-cost-ops-staging/llm-cost-ops@")

    rollback = (
        world["good"]
        .resolve_job_def(request.job_name)
        .execute_in_process(run_config=request.run_config, tags=request.tags, instance=instance)
    )
    assert rollback.success
    assert [e.step_key for e in rollback.get_step_success_events()] == [
        "rollback_release_staging",
        "smoke_after_rollback_staging",
    ]
    assert _checks(rollback) == dict.fromkeys(SMOKE_CHECKS, True)
    assert _live_image(server) == "ghcr.io/llm-cost-ops/llm-cost-ops:1.4.2"
    after = _tick(world, tick.cursor)
    assert after.run_requests == []
    assert after.skip_message == "staging: 4 workload(s), no failed rollout"


def test_smoke_job_fails_on_another_version(world):
    instance = world["instance"]
    assert (
        world["good"]
        .resolve_job_def("deploy_staging")
        .execute_in_process(run_config=DEPLOY, instance=instance)
        .success
    )
    with world["stub"].fault("wrong-version"):
        result = (
            world["good"]
            .resolve_job_def("smoke_test_staging")
            .execute_in_process(instance=instance, raise_on_error=False)
        )
    assert not result.success
    checks = _checks(result)
    assert checks.pop("info_version") is False and all(checks.values())
    (evaluation,) = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
        and e.event_specific_data.check_name == "info_version"
    ]
    assert evaluation.metadata["expected"].value == "version 1.4.2"
    assert evaluation.metadata["seen"].value == "version 0.0.1-wrong"


def test_drift_check_reports_changed_fields(world):
    instance, server = world["instance"], world["server"]
    assert (
        world["good"]
        .resolve_job_def("deploy_staging")
        .execute_in_process(run_config=DEPLOY, instance=instance)
        .success
    )
    drift_job = world["good"].resolve_job_def("drift_check_staging")
    assert _checks(drift_job.execute_in_process(instance=instance)) == {"drift": True}

    other = Kube(client.ApiClient(server.client_configuration()), field_manager="kubectl-edit")
    config = server.read("v1", "ConfigMap", "llm-cost-ops-config", NS)
    other.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": config["metadata"]["name"], "namespace": NS},
            "data": {"LOG_LEVEL": "trace"},
        },
        force=True,
    )
    other.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "llm-cost-ops", "namespace": NS},
            "spec": {"template": {"spec": {"containers": [{"name": "llm-cost-ops", "image": "evil:1"}]}}},
        },
        force=True,
    )
    server.remove("v1", "Service", "grafana", NS)

    result = drift_job.execute_in_process(instance=instance, raise_on_error=False)
    (evaluation,) = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    assert not evaluation.passed
    table = evaluation.metadata["drifted_objects"].value
    assert f"| ConfigMap/{NS}/llm-cost-ops-config | `data.LOG_LEVEL` |" in table
    assert "`spec.template.spec.containers[llm-cost-ops].image`" in table
    assert f"| Service/{NS}/grafana | missing |" in table
    assert evaluation.metadata["drifted"].value == 3
    assert "trace" not in table and "evil" not in table
