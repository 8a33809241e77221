"""`<env>_status` and `status_refresh_<env>` (llm_cost_ops_ops.defs.status), on a real instance.

Cases:
- with nothing recorded, dev_status says never deployed, checks do not pass (every check never ran),
  schema and backup unknown;
- after a release, passing checks, a migration that read the ledger, a backup and its drill, the
  table names revision, app image, digest, "yes: 13 of 13 pass", the schema version and the backup's
  age; the metadata carries the same values;
- one failing check and one not evaluated turn "checks pass" to no and name both;
- a deploy's migration wave applied after the ledger was read raises the version shown;
- a verified backup older than the environment's verified_max_age_days is marked STALE;
- the sensor materializes dev_status itself (no run) after a finished dev run, with the table
  of that moment (and after a run of every environment, which has no env tag); nothing after a
  staging run or after status_dev itself, and nothing on the next tick once the cursor moved past
  the run.
"""

from __future__ import annotations

import time

import dagster as dg
import pytest

from llm_cost_ops_ops.definitions import ENVIRONMENTS, defs
from llm_cost_ops_ops.defs.keys import backups_key, deployed_key, schema_key, status_key, verified_key
from llm_cost_ops_ops.defs.status import environment_status, status_sensor

pytestmark = pytest.mark.dagster

IMAGE = "ghcr.io/example/llm-cost-ops:1.4.2"


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def _status(instance: dg.DagsterInstance) -> tuple[str, dict]:
    result = defs.resolve_job_def("status_dev").execute_in_process(instance=instance)
    [materialization] = result.asset_materializations_for_node(status_key("dev").to_python_identifier())
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    return metadata.pop("status"), metadata


def _dev_checks() -> list[dg.AssetCheckKey]:
    own = {deployed_key("dev"), schema_key("dev"), dg.AssetKey("dev_manifests"), verified_key("dev")}
    return [k for k in defs.resolve_asset_graph().asset_check_keys if k.asset_key in own]


def _evaluate(instance, key: dg.AssetCheckKey, passed: bool, **metadata) -> None:
    instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(
            asset_key=key.asset_key, check_name=key.name, passed=passed, metadata=metadata or None
        )
    )


def _record_history(instance) -> None:
    report = instance.report_runless_asset_event
    report(
        dg.AssetMaterialization(
            deployed_key("dev"),
            metadata={
                "revision": 7,
                "operation": "deploy",
                "digest": "sha256:feed",
                "images": [IMAGE, "postgres:16.4"],
            },
        )
    )
    report(dg.AssetMaterialization(schema_key("dev"), metadata={"latest_version": 20260101, "applied": []}))
    report(dg.AssetMaterialization(backups_key("dev"), partition="2026-01-02", metadata={"backup_id": "b-1"}))
    report(dg.AssetMaterialization(verified_key("dev"), metadata={"backup_id": "b-1", "passed": True}))
    for key in _dev_checks():
        _evaluate(instance, key, True)


def test_nothing_recorded_is_not_a_pass(instance):
    table, values = _status(instance)
    assert "| deployed | never (no release recorded in this instance) |" in table
    assert f"| checks pass | no: 0 of {len(_dev_checks())} pass; never run: " in table
    assert "| schema version | unknown" in table
    assert "| newest verified backup | none" in table
    assert values["checks_pass"] is False
    assert sorted(values["checks_never_run"]) == sorted(k.to_user_string() for k in _dev_checks())


def test_status_table_after_a_deploy_checks_migration_and_drill(instance):
    _record_history(instance)
    table, values = _status(instance)
    count = len(_dev_checks())
    assert count >= 6  # four bundle checks, smoke checks, drift, the ledger check
    assert "| deployed | r7 (deploy) at " in table
    assert f"| image | `{IMAGE}` |" in table  # the app image, not the database's
    assert "| digest | `sha256:feed` |" in table
    assert f"| checks pass | yes: {count} of {count} pass |" in table
    assert "| schema version | 20260101 (ledger read 20" in table
    assert "| newest verified backup | `b-1`, 0 min old, verified " in table
    assert values["revision"] == 7 and values["images"] == [IMAGE] and values["checks_pass"] is True
    assert values["schema_version"] == 20260101 and values["verified_backup_id"] == "b-1"
    assert 0 <= values["verified_backup_age_hours"] < 1


def test_failing_and_not_evaluated_checks_are_named(instance):
    _record_history(instance)
    _evaluate(instance, dg.AssetCheckKey(deployed_key("dev"), "health"), False)
    _evaluate(instance, dg.AssetCheckKey(deployed_key("dev"), "drift"), False, evaluated=False)
    table, values = _status(instance)
    assert "failing: dev_deployed:health; not evaluated: dev_deployed:drift |" in table
    assert values["checks_pass"] is False
    assert values["checks_failing"] == ["dev_deployed:health"]


def test_a_later_migration_wave_raises_the_schema_version(instance):
    _record_history(instance)
    instance.report_runless_asset_event(
        dg.AssetMaterialization(schema_key("dev"), metadata={"mode": "direct", "applied": ["20260301"]})
    )
    table, values = _status(instance)
    assert "| schema version | 20260301 (ledger read 20" in table and ", then 20260301 applied)" in table
    assert values["schema_version"] == 20260301


def test_an_old_verified_backup_is_stale(instance):
    _record_history(instance)
    nine_days_later = time.time() + 9 * 86400
    table, values = environment_status(instance, "dev", _dev_checks(), nine_days_later, 8)
    assert "| newest verified backup | `b-1`, STALE (older than 8 days), 9 d 0 h old, verified " in table
    assert values["verified_backup_age_hours"] >= 216
    fresh, _ = environment_status(instance, "dev", _dev_checks(), time.time(), 8)
    assert "STALE" not in fresh


def _finished_run(instance, tags: dict[str, str], name: str = "some_job") -> str:
    @dg.op
    def noop():
        pass

    @dg.job(name=name, tags=tags)
    def job():
        noop()

    return job.execute_in_process(instance=instance).run_id


def _tick(instance, cursor: str | None):
    sensor = status_sensor(ENVIRONMENTS["dev"])
    return sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor))


def test_sensor_refreshes_after_a_run_of_the_environment(instance):
    first = _tick(instance, None)
    assert not first.asset_events and "no run finished" in first.skip_message

    _finished_run(instance, {"env": "staging", "operation": "backup"})
    _finished_run(instance, {"env": "dev", "operation": "status"}, name="status_dev")
    others = _tick(instance, None)
    assert not others.asset_events and "no run of dev finished" in others.skip_message

    _finished_run(instance, {"env": "dev", "operation": "backup"})
    after_backup = _tick(instance, others.cursor)
    assert not after_backup.run_requests
    [status] = after_backup.asset_events
    assert status.asset_key == status_key("dev")
    assert "never (no release recorded in this instance)" in status.metadata["status"].value
    assert not _tick(instance, after_backup.cursor).asset_events

    _finished_run(instance, {"operation": "render"}, name="render_and_check")
    [status] = _tick(instance, after_backup.cursor).asset_events
    assert status.asset_key == status_key("dev")


def test_every_environment_has_a_status_asset_job_and_sensor():
    keys = defs.resolve_asset_graph().get_all_asset_keys()
    for env in ENVIRONMENTS:
        assert status_key(env) in keys
        job = defs.resolve_job_def(f"status_{env}")
        assert job.asset_layer.executable_asset_keys == {status_key(env)}
        sensor = defs.resolve_sensor_def(f"status_refresh_{env}")
        assert not sensor.has_jobs  # it materializes the status itself; the job is for a person
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
