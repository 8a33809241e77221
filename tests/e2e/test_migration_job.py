"""The in-cluster migration path (llm_cost_ops_ops.k8s.migration_job) against the API-server double
over HTTP and its controller simulator.

The simulator is stepped by the waiter's own sleeper and the clock is fake (one poll = one
controller step = POLL fake seconds); the sleeper also grows the pod's log a few lines per step, so
the log really arrives over several polls.

Expectations come from what the test gives (the spec) and from the staging bundle, never from the
module's own constants.

Cases:
- the Job the API server received carries what the spec asks: a valid name ending in the run id (a
  long one cut to 63 characters), the run id annotated, command and args, envFrom the named
  ConfigMap and Secret, service account, resources, extra labels on Job and pod,
  activeDeadlineSeconds and ttlSecondsAfterFinished; restartPolicy Never, backoffLimit 0;
- the default Job runs like the staging API (same envFrom, same user, group and fsGroup), meets the
  restricted Pod Security profile (non-root, seccomp, no privilege escalation, drop ALL, read-only
  root with an emptyDir /tmp, no API token), and the staging bundle's NetworkPolicies let its pod
  reach PostgreSQL on 5432 (an unlabelled pod they do not);
- a pod that succeeds: every log line streamed once, in order, across polls; the result names the
  Job and pod and carries the log;
- a long log (1,210 lines, repeated lines among them, one burst of 400 between two polls): every
  line streamed once, in order, and all polls together transfer under a tenth of what re-reading
  the whole log each poll would;
- a pod that fails: MigrationJobFailed with exit code 1, the last log lines, the Job's reason;
- the same run again (a retried step) follows the existing Job instead of creating a second one;
- an image that cannot be pulled: MigrationJobFailed naming the pull error at once, Job deleted;
- a pod that never finishes: MigrationJobTimeout at the (fake) deadline, Job left to its
  activeDeadlineSeconds; without a deadline, the wait ends a minute after the Job's own deadline.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from kubernetes import client

from llm_cost_ops_ops.bundles.model import RenderedBundle
from llm_cost_ops_ops.bundles.platform import API_APP, DATABASE_APP
from llm_cost_ops_ops.bundles.reachability import Pod, Reachability, pods_of
from llm_cost_ops_ops.bundles.renderers import render_environment
from llm_cost_ops_ops.environments import load_environments
from llm_cost_ops_ops.k8s.client import Kube
from llm_cost_ops_ops.k8s.errors import MigrationJobFailed, MigrationJobTimeout
from llm_cost_ops_ops.k8s.migration_job import (
    JobTiming,
    MigrationJobSpec,
    _LogStream,
    migration_job_name,
    run_migration_job,
)
from llm_cost_ops_ops.paths import project_root
from tests.k8s_double import ApiServer, ControllerSimulator

pytestmark = pytest.mark.e2e

NS = "llm-cost-ops-staging"
IMAGE = "registry.example.com/llm-cost-ops:1.4.2"
RUN_ID = "0f8e5c2a-3b1d-4c7e-9a6f-2d4b8e1c7a90"
POLL = 1.0
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
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


@pytest.fixture(scope="module")
def staging() -> RenderedBundle:
    """The staging bundle: the API the migration pod must run like, the policies it must pass."""
    return render_environment(load_environments()["staging"], project_root())


def _pod_spec(job: dict[str, Any]) -> dict[str, Any]:
    return job["spec"]["template"]["spec"]


def test_job_carries_what_the_spec_asks(harness: Harness):
    spec = MigrationJobSpec(
        namespace=NS,
        image=IMAGE,
        command=("/app/llm-cost-ops", "migrate"),
        args=("--source", "/app/migrations"),
        config_map="platform-config",
        secret="platform-secrets",
        service_account="migrator",
        active_deadline_seconds=321,
        ttl_seconds_after_finished=654,
        resources={"limits": {"cpu": "250m", "memory": "96Mi"}},
        labels={"team": "billing"},
    )
    harness.run(spec)
    job = harness.job()
    assert job is not None
    name = job["metadata"]["name"]
    assert name.endswith(RUN_ID) and len(name) <= 63 and DNS_LABEL.fullmatch(name)
    assert RUN_ID in job["metadata"]["annotations"].values()
    assert RUN_ID in job["spec"]["template"]["metadata"]["annotations"].values()
    assert job["spec"]["activeDeadlineSeconds"] == 321 and job["spec"]["ttlSecondsAfterFinished"] == 654
    # A failed migration is never re-run blindly: one pod, no retries.
    assert job["spec"]["backoffLimit"] == 0
    pod = _pod_spec(job)
    assert pod["restartPolicy"] == "Never" and pod["serviceAccountName"] == "migrator"
    (container,) = pod["containers"]
    assert container["image"] == IMAGE
    assert container["command"] == list(spec.command) and container["args"] == list(spec.args)
    assert container["envFrom"] == [
        {"configMapRef": {"name": "platform-config"}},
        {"secretRef": {"name": "platform-secrets"}},
    ]
    assert container["resources"] == {"limits": {"cpu": "250m", "memory": "96Mi"}}
    assert job["metadata"]["labels"]["team"] == "billing"
    (running,) = harness.server.objects("v1", "Pod", NS)
    assert running["metadata"]["labels"]["team"] == "billing"
    assert running["metadata"]["labels"].items() >= job["spec"]["template"]["metadata"]["labels"].items()

    long_name = migration_job_name("Run_" + "x" * 80)
    assert len(long_name) <= 63 and DNS_LABEL.fullmatch(long_name)
    assert long_name.startswith(migration_job_name("Run_x"))


def test_default_job_runs_like_the_api_and_reaches_the_database(harness: Harness, staging: RenderedBundle):
    """The default Job takes the API's configuration and user, passes the restricted Pod Security
    profile, and the staging bundle's NetworkPolicies let its pod reach PostgreSQL."""
    harness.run()
    job = harness.job()
    assert job is not None
    pod = _pod_spec(job)
    (container,) = pod["containers"]
    api = staging.find("Deployment", API_APP)
    assert api is not None and api.namespace == NS
    api_pod = api.body["spec"]["template"]["spec"]
    (api_container,) = [c for c in api_pod["containers"] if c.get("envFrom")]
    assert container["envFrom"] == api_container["envFrom"]
    for key in ("runAsUser", "runAsGroup", "fsGroup"):
        assert pod["securityContext"][key] == api_pod["securityContext"][key], key

    # The restricted profile's requirements, and a read-only root with somewhere to write.
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] in ("RuntimeDefault", "Localhost")
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False and security["capabilities"]["drop"] == ["ALL"]
    assert security["readOnlyRootFilesystem"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert any(
        m["mountPath"] == "/tmp" and "emptyDir" in volumes[m["name"]] for m in container["volumeMounts"]
    )
    assert pod["automountServiceAccountToken"] is False  # migrations never call the API server

    (running,) = harness.server.objects("v1", "Pod", NS)
    migration_pod = Pod("the migration Job's pod", NS, dict(running["metadata"]["labels"]))
    [database] = [p for p in pods_of(staging) if p.name == f"StatefulSet/{NS}/{DATABASE_APP}"]
    assert Reachability(staging).allows(migration_pod, database, 5432)
    assert not Reachability(staging).allows(Pod("an unlabelled pod", NS, {}), database, 5432)


def test_success_streams_the_log(harness: Harness):
    result = harness.run()
    (pod,) = harness.server.objects("v1", "Pod", NS)
    name = pod["metadata"]["name"]
    streamed = [line for line in harness.seen if line.startswith(f"{name}: ")]
    assert streamed == [f"{name}: {line}" for line in SQLX_LOG]
    assert (result.name, result.namespace, result.pod) == (migration_job_name(RUN_ID), NS, name)
    assert result.log_lines == tuple(SQLX_LOG) and result.duration_seconds > 0
    command = " ".join(_pod_spec(harness.job())["containers"][0]["command"])
    assert harness.seen[0].startswith(f"created Job {NS}/{result.name}: {command} in {IMAGE}")


def test_a_long_log_is_read_incrementally(harness: Harness):
    lines = [f"line {n}" if n % 7 else "the same line again" for n in range(1210)]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "migrate-pod", "namespace": NS},
        "spec": {"containers": [{"name": "migrate", "image": IMAGE}]},
        "status": {"phase": "Running"},
    }
    harness.server.seed(pod)
    transferred: list[int] = []
    read = harness.kube.read_pod_log

    def counted(*args, **kwargs):
        log = read(*args, **kwargs)
        transferred.append(len(log.text.splitlines()))
        return log

    harness.kube.read_pod_log = counted  # type: ignore[method-assign]
    stream = _LogStream(harness.kube, NS, harness.seen.append)
    written, whole_rereads = 0, 0
    for poll in range(60):
        written = min(len(lines), written + (400 if poll == 10 else 20))
        whole_rereads += written  # what reading the whole log each poll would transfer
        harness.server.set_pod_log(NS, "migrate-pod", "".join(f"{line}\n" for line in lines[:written]))
        stream.read(pod)

    assert harness.seen == [f"migrate-pod: {line}" for line in lines]
    assert stream.lines == lines
    assert sum(transferred) < whole_rereads / 10, (sum(transferred), whole_rereads)


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


def test_without_a_deadline_the_wait_outlasts_the_jobs_own_by_a_minute(harness: Harness):
    harness.sim.fail("Job", NS, migration_job_name(RUN_ID), "stuck")
    with pytest.raises(MigrationJobTimeout):
        harness.run(MigrationJobSpec(namespace=NS, image=IMAGE, active_deadline_seconds=40))
    job = harness.job()
    assert job is not None and harness.now == job["spec"]["activeDeadlineSeconds"] + 60
