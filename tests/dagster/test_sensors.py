"""The rollout sensor, drift self-heal and the run-failure notification sensor, evaluated with
`build_sensor_context` / `build_run_status_sensor_context` against the API-server double over HTTP
(workloads moved by its controller simulator), a temporary Dagster instance and a local webhook
receiver.

Cases:
- healthy workloads: no request, a skip saying so, and exactly two API requests (one list per kind);
- each failure kind gives exactly one run request: crashloop, imagepull and oomkilled pods of the
  new revision, ProgressDeadlineExceeded, a StatefulSet stuck past its deadline (timed across
  ticks by the cursor, the sensor's clock injected); the request targets the environment's policy
  job (rollback_staging, deploy_dev), its run_key is the failure key and its tags name it;
  an unhealthy Deployment costs two more requests (its ReplicaSets and pods), a deadline none;
- dedupe: the next tick with the cursor skips ("already handled"); after a cursor reset the run
  tag in the instance still dedupes;
- backoff: at the hourly limit the sensor alerts (webhook) instead of requesting, once per key;
  alert-only policy alerts;
- a deploy, rollback or migration of the environment in progress: skip before any API call;
- API errors (500 past the retries, 403) and an unreadable cursor: a skip naming the error, never
  an exception; the tick's connection is the resource's (two attempts, its injected sleeper);
- the schema guard: rolling back to a release older than the database schema is refused and
  alerted;
- drift self-heal: a failed drift check requests deploy_<env> once; a passing one does nothing;
- definitions: one rollout sensor per environment with its interval; the failure sensor sends the
  environment, job, failing step, redacted error and run link for deploy/rollback/migrate/backup/
  drill jobs, and ignores other jobs.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import dagster as dg
import pytest

from llm_cost_ops_ops.defs.keys import ENV_LOCK_TAG, REMEDIATION_KEY_TAG, REMEDIATION_TAG, drift_check_key
from llm_cost_ops_ops.defs.kubernetes import KubernetesResource
from llm_cost_ops_ops.defs.notify import NotifierResource, notification_definitions
from llm_cost_ops_ops.defs.sensors import rollout_sensor, self_heal_sensor, sensor_definitions
from llm_cost_ops_ops.k8s.client import Kube
from llm_cost_ops_ops.k8s.inventory import inventory_labels
from llm_cost_ops_ops.k8s.ledger import Release, ReleaseLedger
from tests.k8s_double import ApiServer, ControllerSimulator
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.dagster

API = "llm-cost-ops"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def deployment(env: str, ns: str, image: str, name: str = API, replicas: int = 2) -> dict:
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/component": "api"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": {**labels, **inventory_labels(env)}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": {**labels, **inventory_labels(env)}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }


def statefulset(env: str, ns: str, image: str) -> dict:
    labels = {"app.kubernetes.io/name": "postgres", "app.kubernetes.io/component": "database"}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "postgres", "namespace": ns, "labels": {**labels, **inventory_labels(env)}},
        "spec": {
            "replicas": 1,
            "serviceName": "postgres-headless",
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "pg", "image": image}]},
            },
        },
    }


class NoSleepKubernetes(KubernetesResource):
    """The Kubernetes resource with its retry pauses recorded (in `PAUSES`), never slept."""

    def sleep(self, seconds: float) -> None:
        PAUSES.append(seconds)


PAUSES: list[float] = []


class World:
    """The double with one environment's workloads, a Dagster instance and the sensor's resources."""

    def __init__(
        self, server: ApiServer, sim: ControllerSimulator, kubeconfig: Path, spec, instance, receiver
    ):
        self.server, self.sim, self.spec, self.instance, self.receiver = server, sim, spec, instance, receiver
        self.ns, self.env = spec.namespace, spec.name
        self.clock = Clock()
        self.resources = {
            "kubernetes": NoSleepKubernetes(kubeconfig=str(kubeconfig), backoff_initial_seconds=0.2),
            "notifier": NotifierResource(webhook_url=receiver.url(), max_attempts=1),
        }
        PAUSES.clear()
        server.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.ns}})
        server.seed(deployment(self.env, self.ns, "llm-cost-ops:1.0.0"))
        server.seed(statefulset(self.env, self.ns, "postgres:16.1"))
        sim.settle()

    def roll_out(self, kind: str, mode: str, image: str = "2.0.0") -> None:
        name = API if kind == "Deployment" else "postgres"
        self.sim.fail(kind, self.ns, name, mode)
        body = (
            deployment(self.env, self.ns, f"llm-cost-ops:{image}")
            if kind == "Deployment"
            else statefulset(self.env, self.ns, f"postgres:{image}")
        )
        self.server.seed(body)
        for _ in range(8):
            self.sim.step()

    def tick(self, cursor: str | None = None, spec=None):
        sensor = rollout_sensor(spec or self.spec, self.clock)
        context = dg.build_sensor_context(instance=self.instance, cursor=cursor, resources=self.resources)
        self.server.reset_counters()
        return sensor.evaluate_tick(context)

    def api_requests(self) -> list:
        return [r for r in self.server.requests if r.path.count("/") > 3]

    def add_run(self, job: str, status=dg.DagsterRunStatus.SUCCESS, **tags: str) -> dg.DagsterRun:
        run = dg.DagsterRun(job_name=job, run_id=str(uuid.uuid4()), tags=tags, status=status)
        self.instance.add_run(run)
        return run


@pytest.fixture
def receiver():
    with WebhookReceiver() as running:
        yield running


@pytest.fixture
def instance():
    with dg.instance_for_test() as temporary:
        yield temporary


@pytest.fixture
def staging(k8s_server, k8s_controllers, k8s_kubeconfig, env_specs, instance, receiver):
    return World(k8s_server, k8s_controllers, k8s_kubeconfig, env_specs["staging"], instance, receiver)


@pytest.fixture
def dev(k8s_server, k8s_controllers, k8s_kubeconfig, env_specs, instance, receiver):
    return World(k8s_server, k8s_controllers, k8s_kubeconfig, env_specs["dev"], instance, receiver)


def _ledger(world: World, *migrations: list[str]) -> None:
    kube = Kube(__import__("kubernetes").client.ApiClient(world.server.client_configuration()))
    ledger = ReleaseLedger(kube, world.env, world.ns)
    for applied in migrations:
        ledger.record(Release(world.env, "sha", "", [], "healthy", migrations=applied))


def test_healthy_workloads_request_nothing_with_two_api_calls(staging):
    result = staging.tick()
    assert result.run_requests == []
    assert result.skip_message == "staging: 2 workload(s), no failed rollout"
    assert [r.path.rsplit("/", 1)[1] for r in staging.api_requests()] == ["deployments", "statefulsets"]


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("crashloop", "CrashLoopBackOff"), ("imagepull", "ImagePullBackOff"), ("oomkilled", "OOMKilled")],
)
def test_failing_pods_of_the_new_revision_request_one_rollback(staging, mode, reason):
    _ledger(staging, [], [])
    staging.roll_out("Deployment", mode)
    result = staging.tick()
    assert len(result.run_requests) == 1
    request = result.run_requests[0]
    key = f"staging:Deployment/llm-cost-ops-staging/{API}@2"
    assert (request.job_name, request.run_key) == ("rollback_staging", key)
    assert request.tags[REMEDIATION_KEY_TAG] == key and request.tags[REMEDIATION_TAG] == "staging"
    assert request.tags["llm-cost-ops-ops/remediation-reason"].startswith(f"{reason}: pod {API}-")
    listed = [r.path.rsplit("/", 1)[1] for r in staging.api_requests() if "secrets" not in r.path]
    assert listed[:4] == ["deployments", "replicasets", "pods", "statefulsets"]


def test_progress_deadline_requests_a_redeploy_in_dev_without_listing_pods(dev):
    dev.roll_out("Deployment", "progress-deadline")
    result = dev.tick()
    assert [(r.job_name, r.run_key) for r in result.run_requests] == [
        ("deploy_dev", f"dev:Deployment/llm-cost-ops-dev/{API}@2")
    ]
    assert len(dev.api_requests()) == 2


def test_statefulset_stuck_past_its_deadline(staging):
    _ledger(staging, [], [])
    staging.roll_out("StatefulSet", "stuck", image="16.2")
    first = staging.tick()
    assert first.run_requests == [] and "timing 1 condition(s)" in first.skip_message
    staging.clock.now += 599
    assert staging.tick(first.cursor).run_requests == []
    staging.clock.now += 1
    result = staging.tick(first.cursor)
    assert len(result.run_requests) == 1
    assert result.run_requests[0].run_key.startswith(
        "staging:StatefulSet/llm-cost-ops-staging/postgres@postgres-"
    )


def test_one_failure_one_request_across_ticks_and_cursor_resets(staging):
    _ledger(staging, [], [])
    staging.roll_out("Deployment", "crashloop")
    first = staging.tick()
    (request,) = first.run_requests
    second = staging.tick(first.cursor)
    assert second.run_requests == [] and "already handled by an earlier run request" in second.skip_message
    run = staging.add_run("rollback_staging", **request.tags)
    reset = staging.tick(None)
    assert reset.run_requests == [] and f"already handled by run {run.run_id}" in reset.skip_message


def test_hourly_limit_turns_remediation_into_one_alert(staging, receiver):
    spec = staging.spec.model_copy(
        update={"operations": staging.spec.operations.model_copy(update={"max_remediations_per_hour": 1})}
    )
    staging.add_run(
        "rollback_staging", **{REMEDIATION_TAG: "staging", REMEDIATION_KEY_TAG: "staging:other@1"}
    )
    staging.roll_out("Deployment", "crashloop")
    first = staging.tick(spec=spec)
    assert first.run_requests == [] and "reached the limit of 1" in first.skip_message
    assert staging.tick(first.cursor, spec=spec).run_requests == []
    (alert,) = receiver.bodies()
    assert alert["kind"] == "rollout-alert" and alert["environment"] == "staging"
    assert alert["title"] == f"staging: Deployment/llm-cost-ops-staging/{API} failed (CrashLoopBackOff)"


def test_alert_only_policy(staging, receiver):
    spec = staging.spec.model_copy(
        update={"operations": staging.spec.operations.model_copy(update={"remediation": "alert"})}
    )
    staging.roll_out("Deployment", "imagepull")
    assert staging.tick(spec=spec).run_requests == []
    assert "remediation policy is alert only" in receiver.bodies()[0]["summary"]


@pytest.mark.parametrize("job", ["deploy_staging", "rollback_staging", "migrate_staging"])
def test_operation_in_progress_skips_before_any_api_call(staging, job):
    staging.roll_out("Deployment", "crashloop")
    run = staging.add_run(job, dg.DagsterRunStatus.STARTED, **{ENV_LOCK_TAG: "staging"})
    result = staging.tick()
    assert result.run_requests == []
    assert result.skip_message == f"staging: {job} run {run.run_id} is in progress; rollouts not judged"
    assert staging.api_requests() == []


@pytest.mark.parametrize(("code", "count", "attempts"), [(500, 10, 2), (403, 1, 1)])
def test_api_errors_skip_with_the_reason(staging, code, count, attempts):
    staging.server.fail_next(count, code)
    result = staging.tick()
    assert result.run_requests == []
    assert result.skip_message.startswith(
        "staging: Kubernetes API error, rollouts not judged this tick: list"
    )
    assert result.skip_message.endswith(f"(HTTP {code})")
    # The resource's connection: a transient error is retried once within the tick, its pause
    # taken from the resource's sleeper (no real sleep); a permanent one is not retried.
    assert len(staging.api_requests()) == attempts
    assert len(PAUSES) == attempts - 1
    assert all(0 < pause <= 1.0 for pause in PAUSES)


def test_unreadable_cursor_is_a_reset_one(staging):
    assert staging.tick("not json").skip_message == "staging: 2 workload(s), no failed rollout"


def test_rollback_older_than_the_schema_is_refused_and_alerted(staging, receiver):
    _ledger(staging, ["20250101000001_init"], ["20250201000001_costs"])
    staging.roll_out("Deployment", "crashloop")
    result = staging.tick()
    assert result.run_requests == []
    summary = receiver.bodies()[0]["summary"]
    assert "rollback refused: r1 expects schema 20250101000001, the database is at 20250201000001" in summary


def test_drift_self_heal(staging, instance):
    spec = staging.spec.model_copy(
        update={"operations": staging.spec.operations.model_copy(update={"self_heal": True})}
    )
    sensor = self_heal_sensor(spec, staging.clock)

    def tick(cursor=None):
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=staging.resources)
        return sensor.evaluate_tick(context)

    assert tick().skip_message == "staging: the latest drift check found no drift"
    key = drift_check_key("staging")

    @dg.asset(key=key.asset_key)
    def deployed():
        return 1

    @dg.asset_check(asset=key.asset_key, name="drift")
    def drift():
        return dg.AssetCheckResult(passed=False)

    result = dg.materialize([deployed, drift], instance=instance, raise_on_error=False)
    first = tick()
    assert [(r.job_name, r.run_key) for r in first.run_requests] == [
        ("heal_staging", f"staging:drift@{result.run_id}")  # the running release, not the overlay
    ]
    assert tick(first.cursor).run_requests == []
    assert {s.name for s in sensor_definitions(spec).sensors} == {
        "rollout_health_staging",
        "drift_self_heal_staging",
    }


def test_sensor_definitions_per_environment(env_specs):
    for env, spec in env_specs.items():
        defs = sensor_definitions(spec)
        (sensor,) = defs.sensors
        assert sensor.name == f"rollout_health_{env}"
        assert sensor.minimum_interval_seconds == spec.operations.sensor_interval_seconds == 30
        assert not defs.schedules  # the hourly drift schedule is data: schedules/drift.yaml


def test_drift_checks_are_scheduled_hourly_from_data():
    from llm_cost_ops_ops.definitions import defs

    schedules = {s.name: s for s in defs.get_repository_def().schedule_defs}
    for env in ("dev", "staging", "prod"):
        schedule = schedules[f"hourly_drift_check_{env}"]
        assert schedule.job_name == f"drift_check_{env}"
        assert schedule.cron_schedule.startswith(("0 ", "5 ", "10 ")) and schedule.cron_schedule.endswith(
            "* * * *"
        )


def test_failure_notification(env_specs, instance, receiver, monkeypatch):
    monkeypatch.setenv("LLM_COST_OPS_DATABASE_PASSWORD", "pg-pass-123")
    (sensor,) = notification_definitions(env_specs).sensors
    notifier = NotifierResource(webhook_url=receiver.url("/generic"), dagster_url="http://ui:3000")

    @dg.op
    def apply_bundle():
        raise RuntimeError("rollout failed; DATABASE_URL=postgres://app:pg-pass-123@db/x; pass pg-pass-123")

    for name in ("deploy_staging", "restore_drill_prod", "render_and_check_dev"):
        job = dg.GraphDefinition(name=name, node_defs=[apply_bundle]).to_job()
        run = job.execute_in_process(
            instance=instance, raise_on_error=False, tags={"env": name.rsplit("_", 1)[1]}
        )
        event = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records[0]
        context = dg.build_run_status_sensor_context(
            sensor_name=sensor.name,
            dagster_instance=instance,
            dagster_run=run.dagster_run,
            dagster_event=event.event_log_entry.dagster_event,
            resources={"notifier": notifier},
        ).for_run_failure()
        sensor(context)
    bodies = receiver.bodies("/generic")
    assert [b["job"] for b in bodies] == ["deploy_staging", "restore_drill_prod"]
    body = bodies[0]
    assert (body["environment"], body["step"], body["link"]) == (
        "staging",
        "apply_bundle",
        f"http://ui:3000/runs/{body['run_id']}",
    )
    assert body["summary"].startswith("RuntimeError: rollout failed; DATABASE_URL=***")
    assert "pg-pass-123" not in str(bodies)


def test_redeploy_is_not_offered_for_a_crash_loop_of_the_new_image(dev):
    # dev's policy is redeploy: re-applying the same bundle brings the same crashing pods back.
    dev.roll_out("Deployment", "crashloop")
    result = dev.tick()
    assert result.run_requests == []
    assert "cannot cure CrashLoopBackOff" in (result.skip_message or "")
