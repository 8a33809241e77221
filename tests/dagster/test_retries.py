"""Issue 11: permanent errors are not retried; transient database, storage and API errors are
(llm_cost_ops_ops/defs/retries.py). Jobs run in process with the code location's resources and a
retry policy without delay (the policy is injected, like a clock).

Cases:
- migrate_dev without its DSN, restore_drill_dev and restore_dev without the admin DSN: one
  attempt, no retry, the failure the error's own line naming the variable;
- migrate_dev against a database that refuses connections (a closed port): retried up to the
  policy's limit, then failed;
- the judge: Kubernetes 429/500/503 and lost connections, DatabaseUnavailable, StorageUnavailable
  and a held migration lock are transient; 403/404/409, ConfigError, an unparsable DSN, a refused
  gate, a failed drill, a changed migration are not.
"""

from __future__ import annotations

import socket

import dagster as dg
import pytest

from llm_cost_ops_ops import definitions
from llm_cost_ops_ops.defs.backup_storage import BackupStorageResource
from llm_cost_ops_ops.defs.backups import backup_definitions
from llm_cost_ops_ops.defs.retries import is_transient
from llm_cost_ops_ops.defs.schema import schema_definitions
from llm_cost_ops_ops.errors import ConfigError
from llm_cost_ops_ops.k8s.errors import ApiError
from llm_cost_ops_ops.postgres.backup_errors import BackupGateRefused, DrillFailed
from llm_cost_ops_ops.postgres.errors import (
    ChangedMigration,
    DatabaseUnavailable,
    InvalidDsn,
    MigrationLockTimeout,
)
from llm_cost_ops_ops.storage.errors import StorageAccessDenied, StorageUnavailable

pytestmark = pytest.mark.dagster

FAST = dg.RetryPolicy(max_retries=2, delay=0)
DSN = "LLM_COST_OPS_OPS_DEV_DATABASE_URL"


@pytest.fixture
def defs(env_specs, tmp_path) -> dg.Definitions:
    spec = env_specs["dev"]
    return dg.Definitions.merge(
        schema_definitions(spec, retry=FAST),
        backup_definitions(spec, retry=FAST),
        dg.Definitions(
            executor=dg.in_process_executor,
            resources={
                **definitions.defs.resources,
                "backups": BackupStorageResource(kind="local", local_dir=str(tmp_path / "backups")),
            },
        ),
    )


def _attempts(result: dg.ExecuteInProcessResult, step: str) -> int:
    retries = [
        e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY" and e.step_key == step
    ]
    return len(retries) + 1


def _failure(result: dg.ExecuteInProcessResult, step: str) -> str:
    [failure] = [e for e in result.get_step_failure_events() if e.step_key == step]
    return failure.step_failure_data.error.message


@pytest.mark.parametrize(
    ("job", "step", "variable"),
    [
        ("migrate_dev", "dev_schema", DSN),
        ("restore_drill_dev", "dev_backups_verified", DSN),
        ("restore_dev", "restore_backup_dev", DSN),
    ],
)
def test_a_missing_dsn_fails_at_once(defs, monkeypatch, job, step, variable):
    monkeypatch.delenv(variable, raising=False)

    result = defs.resolve_job_def(job).execute_in_process(raise_on_error=False)

    assert not result.success
    assert _attempts(result, step) == 1
    assert f"dev: set {variable} to " in _failure(result, step)


def test_a_database_that_refuses_connections_is_retried(defs, monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(DSN, f"postgresql://nobody:secret@127.0.0.1:{port}/none?connect_timeout=1")

    result = defs.resolve_job_def("migrate_dev").execute_in_process(raise_on_error=False)

    assert not result.success
    assert _attempts(result, "dev_schema") == 3
    assert "secret" not in _failure(result, "dev_schema")


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ApiError("list pods", 503), True),
        (ApiError("apply", 429), True),
        (ApiError("get: connection failed after retries"), True),
        (ApiError("apply", 403, "Forbidden"), False),
        (ApiError("apply", 409, "Conflict"), False),
        (DatabaseUnavailable("dev: connection refused"), True),
        (StorageUnavailable("s3: 503"), True),
        (StorageAccessDenied("s3: 403"), False),
        (ConfigError("dev: set X"), False),
        (BackupGateRefused("dev: no backup"), False),
        (DrillFailed("dev: restore drill of b1 failed"), False),
        (InvalidDsn("dev: the DSN does not parse"), False),
        (MigrationLockTimeout("dev: lock held"), True),
        (ChangedMigration("migration 1 was modified", 1), False),
        (ValueError("a bug"), False),
    ],
)
def test_the_judge_of_transient_errors(error, transient):
    assert is_transient(error) is transient
