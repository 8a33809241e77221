"""`<env>_schema`, its blocking ledger check, `migrate_<env>`, and the deploy's migration wave.

Cases: migrate_dev applies the platform schema to a real database and records applied versions,
none pending, the last applied time; a re-run applies nothing; a tampered ledger row (changed
checksum) fails the blocking check naming the version; without the DSN variable the check is a
warning naming the variable; the deploy of dev against the API-server double runs the migrations
in its migration wave (before the API Deployment is applied) and records dev_schema and the
applied versions in the release.
"""

from __future__ import annotations

import hashlib

import dagster as dg
import psycopg
import pytest
from kubernetes import client

from llm_cost_ops_ops.definitions import defs
from llm_cost_ops_ops.defs.keys import schema_key
from llm_cost_ops_ops.defs.kubernetes import KubernetesResource
from llm_cost_ops_ops.k8s.client import Kube
from llm_cost_ops_ops.k8s.ledger import ReleaseLedger
from llm_cost_ops_ops.postgres.source import load_migrations

pytestmark = pytest.mark.dagster

DSN_VARIABLE = "LLM_COST_OPS_OPS_DEV_DATABASE_URL"


def _run_ledger_check():
    """Only the blocking check of dev_schema, as the UI's "execute check" runs it."""
    job = dg.define_asset_job("check_only", selection=dg.AssetSelection.checks_for_assets(schema_key("dev")))
    merged = dg.Definitions.merge(defs, dg.Definitions(jobs=[job]))
    return merged.resolve_job_def("check_only").execute_in_process(raise_on_error=False)


def _metadata(result, key):
    events = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return {k: v.value for k, v in events[-1].materialization.metadata.items()}


def test_migrate_job_applies_and_records_the_schema(pg_database, monkeypatch):
    monkeypatch.setenv(DSN_VARIABLE, pg_database)
    instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_job_def("migrate_dev").execute_in_process(instance=instance)
    assert result.success
    versions = sorted({m.version for m in load_migrations()})
    metadata = _metadata(result, schema_key("dev"))
    assert metadata["applied_versions"] == versions
    assert metadata["pending_versions"] == []
    assert metadata["applied"] == [str(v) for v in versions]
    assert metadata["last_applied_at"] != "never"
    checks = result.get_asset_check_evaluations()
    assert [(c.check_name, c.passed) for c in checks] == [("ledger_matches_migrations", True)]

    again = defs.resolve_job_def("migrate_dev").execute_in_process(instance=instance)
    assert _metadata(again, schema_key("dev"))["applied"] == []


def test_changed_checksum_fails_the_blocking_check(pg_database, monkeypatch):
    monkeypatch.setenv(DSN_VARIABLE, pg_database)
    assert defs.resolve_job_def("migrate_dev").execute_in_process().success
    first = min(m.version for m in load_migrations())
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(
            "UPDATE _sqlx_migrations SET checksum = %s WHERE version = %s",
            (hashlib.sha384(b"x").digest(), first),
        )
    result = defs.resolve_job_def("migrate_dev").execute_in_process(raise_on_error=False)
    assert not result.success  # the runner refuses before applying anything
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert f"migration {first} was previously applied but has been modified" in str(
        failure.event_specific_data.error.cause or failure.event_specific_data.error
    )
    # The blocking check reports the same problem when run on its own.
    check = _run_ledger_check().get_asset_check_evaluations()
    assert not check[0].passed and str(first) in (check[0].description or "")


def test_ledger_check_without_dsn_is_a_warning(monkeypatch):
    monkeypatch.delenv(DSN_VARIABLE, raising=False)
    evaluations = _run_ledger_check().get_asset_check_evaluations()
    assert evaluations and evaluations[0].severity == dg.AssetCheckSeverity.WARN
    assert DSN_VARIABLE in (evaluations[0].description or "")


def test_deploy_runs_the_migration_wave_before_the_api(pg_database, monkeypatch, k8s_server, k8s_kubeconfig):
    from tests.k8s_double import ControllerSimulator

    monkeypatch.setenv(DSN_VARIABLE, pg_database)
    applied_at: dict[str, int] = {}

    def note(request):
        if (
            request.method == "PATCH"
            and "deployments/llm-cost-ops" in request.path
            and "dryRun" not in str(request.query)
        ):
            with psycopg.connect(pg_database) as conn:
                applied_at["migrations"] = conn.execute("SELECT count(*) FROM _sqlx_migrations").fetchone()[0]
        return None

    k8s_server.inject(note)
    with ControllerSimulator(k8s_server).run_in_background(0.01):
        # The deploy job without the smoke checks: there is no application behind the double.
        bundle = dg.AssetKey("dev_manifests")
        selection = dg.AssetSelection.assets(bundle, dg.AssetKey("dev_deployed")).without_checks()
        job = dg.define_asset_job(
            "deploy_dev_no_smoke", selection=selection | dg.AssetSelection.checks_for_assets(bundle)
        )
        merged = dg.Definitions.merge(defs, dg.Definitions(jobs=[job]))
        result = merged.resolve_job_def("deploy_dev_no_smoke").execute_in_process(
            run_config={"ops": {"dev_deployed": {"config": {"mode": "apply", "poll_seconds": 0.02}}}},
            resources={
                "kubernetes": KubernetesResource(kubeconfig=str(k8s_kubeconfig), backoff_initial_seconds=0)
            },
            raise_on_error=False,
        )
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    versions = sorted({m.version for m in load_migrations()})
    assert applied_at["migrations"] == len(versions)  # every migration ran before the API was applied
    assert _metadata(result, schema_key("dev"))["applied"] == [str(v) for v in versions]
    kube = Kube(client.ApiClient(k8s_server.client_configuration()))
    release = ReleaseLedger(kube, "dev", "llm-cost-ops-dev").latest()
    assert release is not None and release.migrations == [str(v) for v in versions]


def test_job_mode_records_the_versions_the_job_applied(pg_database, monkeypatch, k8s_server, k8s_kubeconfig):
    """The migration Job (simulated: its creation applies the migrations, as the app image's
    `sqlx migrate run` would) succeeds, and the versions it added to the ledger are recorded."""
    import logging
    from types import SimpleNamespace

    from llm_cost_ops_ops.defs.databases import DatabaseResource
    from llm_cost_ops_ops.defs.schema import run_migrations
    from llm_cost_ops_ops.environments import load_environments
    from llm_cost_ops_ops.postgres.migrator import Migrator
    from tests.k8s_double import ControllerSimulator

    monkeypatch.setenv("LLM_COST_OPS_OPS_STAGING_DATABASE_URL", pg_database)
    staging = load_environments()["staging"]
    staging = staging.model_copy(
        update={"migrations": staging.migrations.model_copy(update={"deadline_seconds": 30})}
    )

    def job_runs_migrations(request):
        if request.method == "POST" and request.path.endswith("/jobs") and "dryRun" not in str(request.query):
            Migrator(pg_database).run()
        return None

    k8s_server.inject(job_runs_migrations)
    kube = KubernetesResource(kubeconfig=str(k8s_kubeconfig), backoff_initial_seconds=0)
    kube.connect().apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": staging.namespace}})
    context = SimpleNamespace(run=SimpleNamespace(run_id="job-mode-test"), log=logging.getLogger("t"))
    with ControllerSimulator(k8s_server).run_in_background(0.01):
        step = run_migrations(
            context, staging, DatabaseResource(), kube, image="ghcr.io/llm-cost-ops/llm-cost-ops:1.4.2"
        )
    versions = sorted({m.version for m in load_migrations()})
    assert step["mode"] == "job" and step["job"]
    assert step["applied"] == [str(v) for v in versions]


def test_standalone_migrate_takes_the_environment_lease(pg_database, monkeypatch, k8s_server, k8s_kubeconfig):
    """migrate_dev is one operation per environment like a deploy: with the Lease held by another
    run it fails before any migration, and once free it takes and releases the Lease."""
    from llm_cost_ops_ops.k8s.lease import LEASE_NAME, EnvironmentLease

    monkeypatch.setenv(DSN_VARIABLE, pg_database)
    kubernetes = KubernetesResource(kubeconfig=str(k8s_kubeconfig), backoff_initial_seconds=0)
    kube = kubernetes.connect()
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "llm-cost-ops-dev"}})
    other = EnvironmentLease(kube, "llm-cost-ops-dev", "deploy-run", 600)
    other.acquire()
    job = defs.resolve_job_def("migrate_dev")

    blocked = job.execute_in_process(resources={"kubernetes": kubernetes}, raise_on_error=False)

    assert not blocked.success
    [failure] = [e for e in blocked.all_events if e.is_step_failure]
    assert "deploy-run" in failure.message + str(failure.step_failure_data.error)
    with psycopg.connect(pg_database) as conn:
        assert conn.execute("select to_regclass('_sqlx_migrations')").fetchone()[0] is None
    other.release()

    assert job.execute_in_process(resources={"kubernetes": kubernetes}).success
    lease = kube.get("coordination.k8s.io/v1", "Lease", LEASE_NAME, "llm-cost-ops-dev")
    assert lease["spec"]["holderIdentity"] in (None, "")
