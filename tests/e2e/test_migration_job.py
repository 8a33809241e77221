"""The in-cluster migration path (llm_cost_ops_ops.k8s.migration_job) against the API-server double
over HTTP and its controller simulator.

The simulator is stepped by the waiter's own sleeper and the clock is fake (one poll = one
controller step = POLL fake seconds); the sleeper also grows the pod's log a few lines per step, so
the log really arrives over several polls.

Cases:
- the Job as created: name `llm-cost-ops-migrate-<run id>` (sanitised, at most 63 characters), the
  default `sqlx migrate run` or a configured command, envFrom the ConfigMap and Secret, pod labels
  for the database NetworkPolicy, restricted security context (non-root uid 1000, read-only root
  with an emptyDir /tmp, drop ALL, seccomp RuntimeDefault), resources, restartPolicy Never,
  backoffLimit 0, activeDeadlineSeconds, ttlSecondsAfterFinished, the run id annotation;
- a pod that succeeds: every log line streamed once, in order, across polls; the result names the
  Job and pod and carries the log;
- a pod that fails: MigrationJobFailed with exit code 1, the last log lines, the Job's reason;
- the same run again (a retried step) follows the existing Job instead of creating a second one;
- an image that cannot be pulled: MigrationJobFailed naming the pull error at once, Job deleted;
- a pod that never finishes: MigrationJobTimeout at the (fake) deadline, Job left to its
  activeDeadlineSeconds.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from llm_cost_ops_ops.k8s.client import Kube
from llm_cost_ops_ops.k8s.errors import MigrationJobFailed, MigrationJobTimeout
from llm_cost_ops_ops.k8s.migration_job import (
    JobTiming,
    MigrationJobSpec,
    migration_job_name,
    run_migration_job,
)
from tests.k8s_double import ApiServer, ControllerSimulator

pytestmark = pytest.mark.e2e

NS = "llm-cost-ops-staging"
IMAGE = "registry.example.com/llm-cost-ops:1.4.2"
RUN_ID = "0f8e5c2a-3b1d-4c7e-9a6f-2d4b8e1c7a90"
POLL = 1.0
SQLX_LOG = [
    "Applied 20250115000001/migrate enable extensions (8.5ms)",
    "Applied 20250115000002/migrate create pricing tables (3.9ms)",
    "Applied 20250115000003/migrate create usage records (3.8ms)",
    "Applied 20250115000004/migrate create cost records (3.6ms)",
    "Applied 20250115000005/migrate create audit logs (2.8ms)",
]
FAILED_LOG = [
    *SQLX_LOG[:2],
    "error: while executing migrations: error returned from database: "
    'relation "usage_records" already exists',
]


class Harness:
    """The double, its simulator stepped by the waiter's sleeper, a fake clock, and a growing log."""

    def __init__(self, server: ApiServer, sim: ControllerSimulator, log_lines: list[str]):
        self.server, self.sim, self.log_lines = server, sim, log_lines
        self.now = 0.0
        self.steps = 0
        self.seen: list[str] = []
        server.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        self.kube = Kube(client.ApiClient(server.client_configuration()), sleeper=lambda _: None)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.steps += 1
        self.sim.step()
        for pod in self.server.objects("v1", "Pod", NS):
            finished = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
            shown = self.log_lines if finished else self.log_lines[: 2 * self.steps]
            self.server.set_pod_log(NS, pod["metadata"]["name"], "".join(f"{line}\n" for line in shown))

    def run(self, spec: MigrationJobSpec | None = None, run_id: str = RUN_ID, deadline: float | None = None):
        return run_migration_job(
            self.kube,
            spec or MigrationJobSpec(namespace=NS, image=IMAGE),
            run_id,
            timing=JobTiming(deadline_seconds=deadline, poll_seconds=POLL, log_lines=2),
            clock=self.clock,
            sleeper=self.sleep,
            log=self.seen.append,
        )

    def job(self, run_id: str = RUN_ID) -> dict[str, Any] | None:
        return self.server.read("batch/v1", "Job", migration_job_name(run_id), NS)


@pytest.fixture
def harness(k8s_server: ApiServer, k8s_controllers: ControllerSimulator) -> Harness:
    return Harness(k8s_server, k8s_controllers, SQLX_LOG)


def test_job_as_created(harness: Harness):
    spec = MigrationJobSpec(
        namespace=NS,
        image=IMAGE,
        command=("/app/llm-cost-ops", "migrate"),
        args=("--source", "/app/migrations"),
    )
    harness.run(spec)
    job = harness.job()
    assert job is not None and job["metadata"]["name"] == f"llm-cost-ops-migrate-{RUN_ID}"
    assert job["metadata"]["annotations"]["llm-cost-ops-ops/dagster-run-id"] == RUN_ID
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["activeDeadlineSeconds"] == 900 and job["spec"]["ttlSecondsAfterFinished"] == 86_400
    template = job["spec"]["template"]
    labels = template["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "llm-cost-ops"
    assert labels["app.kubernetes.io/component"] == "migrations"
    pod = template["spec"]
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 1000
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["image"] == IMAGE
    assert container["command"] == ["/app/llm-cost-ops", "migrate"]
    assert container["args"] == ["--source", "/app/migrations"]
    assert container["envFrom"] == [
        {"configMapRef": {"name": "llm-cost-ops-config"}},
        {"secretRef": {"name": "llm-cost-ops-secrets"}},
    ]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["volumes"][0]["name"] == "tmp" and "emptyDir" in pod["volumes"][0]
    assert container["resources"]["limits"]["memory"] == "256Mi"
    (running,) = harness.server.objects("v1", "Pod", NS)
    assert running["metadata"]["labels"]["app.kubernetes.io/component"] == "migrations"

    default = MigrationJobSpec(namespace=NS, image=IMAGE)
    assert default.command == ("sqlx", "migrate", "run")
    long_name = migration_job_name("Run_" + "x" * 80)
    assert len(long_name) <= 63 and long_name.startswith("llm-cost-ops-migrate-run-x")


def test_success_streams_the_log(harness: Harness):
    result = harness.run()
    (pod,) = harness.server.objects("v1", "Pod", NS)
    name = pod["metadata"]["name"]
    streamed = [line for line in harness.seen if line.startswith(f"{name}: ")]
    assert streamed == [f"{name}: {line}" for line in SQLX_LOG]
    assert (result.name, result.namespace, result.pod) == (migration_job_name(RUN_ID), NS, name)
    assert result.log_lines == tuple(SQLX_LOG) and result.duration_seconds > 0
    assert harness.seen[0].startswith(f"created Job {NS}/{result.name}: sqlx migrate run in {IMAGE}")


def test_failure_carries_exit_code_and_last_lines(
    k8s_server: ApiServer, k8s_controllers: ControllerSimulator
):
    harness = Harness(k8s_server, k8s_controllers, FAILED_LOG)
    k8s_controllers.fail("Job", NS, migration_job_name(RUN_ID), "fail")
    with pytest.raises(MigrationJobFailed) as caught:
        harness.run()
    error = caught.value
    assert error.exit_code == 1 and error.job == migration_job_name(RUN_ID)
    assert error.last_lines == tuple(FAILED_LOG[-2:])
    assert "BackoffLimitExceeded" in str(error) and "exit code 1" in str(error)
    assert FAILED_LOG[-1] in str(error)
    assert not isinstance(error, MigrationJobTimeout)


def test_retry_of_the_same_run_follows_the_existing_job(harness: Harness):
    harness.run()
    uid = harness.job()["metadata"]["uid"]
    harness.server.reset_counters()
    again = harness.run()
    assert [r.method for r in harness.server.requests].count("POST") == 1  # answered 409
    assert [job["metadata"]["uid"] for job in harness.server.objects("batch/v1", "Job", NS)] == [uid]
    assert again.log_lines == tuple(SQLX_LOG)
    assert any("already exists for run" in line for line in harness.seen)


def test_image_pull_failure_fails_fast_and_deletes_the_job(harness: Harness):
    harness.sim.fail("Job", NS, migration_job_name(RUN_ID), "imagepull")
    with pytest.raises(MigrationJobFailed, match=r"cannot start: (ErrImagePull|ImagePullBackOff)") as caught:
        harness.run()
    assert caught.value.exit_code is None and "nothing ran" in str(caught.value)
    assert harness.job() is None and harness.now < 10


def test_stuck_job_times_out_at_the_deadline(harness: Harness):
    harness.sim.fail("Job", NS, migration_job_name(RUN_ID), "stuck")
    with pytest.raises(MigrationJobTimeout, match="still running after 30s") as caught:
        harness.run(deadline=30)
    assert harness.now == 30 and caught.value.last_lines == tuple(SQLX_LOG[-2:])
    assert harness.job() is not None
