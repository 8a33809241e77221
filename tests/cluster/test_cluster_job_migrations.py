"""Job-mode migrations as the schema step runs them (defs/schema.run_migrations), on the real
control plane with a real PostgreSQL holding the ledger. KWOK's Job pod exits 0 without running
anything, which is exactly the case a Job's exit code cannot be trusted for.

Cases:
- a Job that exits 0 while the ledger lacks the directory's migrations fails, naming the missing
  versions (issue 16: "succeeds with nothing applied");
- with every migration already in the ledger, no Job is created at all (no `create jobs` in the
  audit log; issue 18: no-op job-mode deploys write);
- without a DSN the ledger cannot be read: the Job runs, and the result says it is not verified.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import psycopg
import pytest
from kubernetes import client

from llm_cost_ops_ops.defs.databases import DatabaseResource
from llm_cost_ops_ops.defs.kubernetes import KubernetesResource
from llm_cost_ops_ops.defs.schema import _directory_versions, run_migrations
from llm_cost_ops_ops.k8s.errors import MigrationJobFailed
from llm_cost_ops_ops.postgres.source import load_migrations

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

IMAGE = "registry.example.com/llm-cost-ops:1.4.2"


@pytest.fixture
def staging(env_specs, admin, cluster_namespace):
    core = client.CoreV1Api(admin)
    core.create_namespace({"metadata": {"name": cluster_namespace}})
    core.create_namespaced_service_account(cluster_namespace, {"metadata": {"name": "llm-cost-ops"}})
    base = env_specs["staging"]
    return base.model_copy(
        update={
            "namespace": cluster_namespace,
            "migrations": base.migrations.model_copy(update={"mode": "job", "deadline_seconds": 60}),
        }
    )


def _ledger(dsn: str, versions: set[int]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, "
            "installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL, checksum BYTEA NOT NULL, "
            "execution_time BIGINT NOT NULL)"
        )
        for migration in load_migrations():
            if migration.version in versions and migration.kind != "down":
                conn.execute(
                    "INSERT INTO _sqlx_migrations VALUES (%s, %s, now(), true, %s, 1)",
                    (migration.version, migration.description, migration.checksum),
                )


def _run(staging, kubeconfig):
    # The step's context as run_migrations uses it: a logger and the run id (the Job is named by it).
    context = SimpleNamespace(log=logging.getLogger("migrate"), run=SimpleNamespace(run_id="run-1"))
    return run_migrations(
        context, staging, DatabaseResource(), KubernetesResource(kubeconfig=str(kubeconfig)), image=IMAGE
    )


def test_a_job_that_exits_0_with_nothing_applied_fails(staging, cluster_kubeconfig, pg_database, monkeypatch):
    monkeypatch.setenv(staging.migrations.dsn_variable("staging"), pg_database)
    _ledger(pg_database, set())
    wanted = sorted(_directory_versions())

    with pytest.raises(MigrationJobFailed) as failed:
        _run(staging, cluster_kubeconfig)

    message = str(failed.value)
    assert f"the ledger lacks {len(wanted)} of {len(wanted)} migrations" in message
    assert str(wanted[0]) in message and str(wanted[-1]) in message


def test_no_job_when_nothing_is_pending(control_plane, staging, cluster_kubeconfig, pg_database, monkeypatch):
    monkeypatch.setenv(staging.migrations.dsn_variable("staging"), pg_database)
    _ledger(pg_database, _directory_versions())
    mark = control_plane.audit_mark()

    step = _run(staging, cluster_kubeconfig)

    assert step["applied"] == [] and step["verified"] is True
    assert [e for e in control_plane.audit(mark) if e.resource == "jobs" and e.verb == "create"] == []


def test_without_a_dsn_the_job_runs_unverified(staging, cluster_kubeconfig, monkeypatch):
    monkeypatch.delenv(staging.migrations.dsn_variable("staging"), raising=False)

    step = _run(staging, cluster_kubeconfig)

    assert step["verified"] is False
    assert step["job"].startswith("llm-cost-ops-migrate-")
