"""Job-mode migrations on the real control plane: the real Job controller creates the pod, KWOK
runs it (exit 0, or exit 1 for an image asking to `fail`), and its log is served by KWOK as the
kubelet's `pods/log`.

Cases:
- success: the Job completes, the pod's log lines reach the run, the result names Job and pod;
- failure: with backoffLimit 0 the real Job controller marks the Job Failed (BackoffLimitExceeded)
  after one pod; MigrationJobFailed carries exit code 1 and the last log lines;
- a pod that cannot pull its image fails at once, and the Job is deleted (the garbage collector
  removes its pod);
- a Job past activeDeadlineSeconds is failed by the real controller with DeadlineExceeded.
"""

from __future__ import annotations

import time

import pytest
from kubernetes import client

from llm_cost_ops_ops.k8s.errors import MigrationJobFailed
from llm_cost_ops_ops.k8s.migration_job import JobTiming, MigrationJobSpec, run_migration_job
from tests.cluster.conftest import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

IMAGE = "registry.example.com/llm-cost-ops"
LOG = "Applied 20250115000001/migrate enable extensions (8.5ms)\nApplied 20250115000002/migrate create pricing tables (3.9ms)\n"


@pytest.fixture
def namespace(admin, cluster_namespace):
    core = client.CoreV1Api(admin)
    core.create_namespace({"metadata": {"name": cluster_namespace}})
    core.create_namespaced_service_account(cluster_namespace, {"metadata": {"name": "llm-cost-ops"}})
    return cluster_namespace


def test_migration_job_succeeds_and_streams_its_log(control_plane, kube, namespace):
    control_plane.pod_log_file(LOG)
    lines: list[str] = []

    result = run_migration_job(
        kube,
        MigrationJobSpec(namespace, f"{IMAGE}:1.4.2"),
        "run-ok",
        timing=JobTiming(60, 0.5),
        log=lines.append,
    )

    assert result.name == "llm-cost-ops-migrate-run-ok"
    assert result.pod.startswith("llm-cost-ops-migrate-run-ok-")
    assert result.log_lines == tuple(LOG.splitlines())
    assert any("create pricing tables" in line for line in lines)
    job = kube.get("batch/v1", "Job", result.name, namespace)
    assert any(c["type"] == "Complete" and c["status"] == "True" for c in job["status"]["conditions"])


def test_failing_migration_job_fails_with_its_exit_code_and_log(control_plane, kube, namespace):
    control_plane.pod_log_file(LOG + 'error: relation "usage_records" already exists\n')

    with pytest.raises(MigrationJobFailed) as failed:
        run_migration_job(
            kube, MigrationJobSpec(namespace, f"{IMAGE}:1.4.2-fail"), "run-bad", timing=JobTiming(60, 0.5)
        )

    message = str(failed.value)
    assert failed.value.exit_code == 1
    assert "BackoffLimitExceeded" in message
    assert 'relation "usage_records" already exists' in message
    pods = kube.list("v1", "Pod", namespace, label_selector="job-name=llm-cost-ops-migrate-run-bad")
    assert len(pods) == 1  # backoffLimit 0: the real Job controller made exactly one attempt


def test_migration_job_whose_image_cannot_be_pulled_is_deleted(kube, namespace):
    started = time.monotonic()
    with pytest.raises(MigrationJobFailed, match=r"ErrImagePull|ImagePullBackOff") as failed:
        run_migration_job(
            kube,
            MigrationJobSpec(namespace, f"{IMAGE}:1.4.2-imagepull"),
            "run-pull",
            timing=JobTiming(60, 0.5),
        )

    assert time.monotonic() - started < 20
    assert "the Job was deleted" in str(failed.value)
    assert kube.get("batch/v1", "Job", "llm-cost-ops-migrate-run-pull", namespace) is None
    wait_for(
        lambda: (
            not kube.list("v1", "Pod", namespace, label_selector="job-name=llm-cost-ops-migrate-run-pull")
        ),
        "the garbage collector removed the pod",
        timeout=30,
    )


def test_migration_job_past_its_deadline_is_failed_by_the_job_controller(kube, namespace):
    spec = MigrationJobSpec(namespace, f"{IMAGE}:1.4.2-stuck", active_deadline_seconds=3)

    with pytest.raises(MigrationJobFailed, match="DeadlineExceeded"):
        run_migration_job(kube, spec, "run-slow", timing=JobTiming(60, 0.5))
