"""What the sensor does about a failure (llm_cost_ops_ops.remediation) and the rollback schema
guard (llm_cost_ops_ops.k8s.rollback_guard).

Cases:
- policy: redeploy runs deploy_<env>, rollback runs rollback_<env>, alert only alerts; a key already
  handled is skipped; at the hourly limit the decision is an alert naming the limit; a refused
  schema verdict turns a rollback into an alert with the guard's reason;
- guard: a target that knows the current schema is allowed; a target older than the schema is
  refused by default naming both versions and the migrations since; with allow_revert it is allowed
  only when every later migration has a down migration; no migrations at all is allowed;
- down migrations are found by version in a migrations directory.
"""

from __future__ import annotations

import pytest

from llm_cost_ops_ops.k8s.ledger import Release
from llm_cost_ops_ops.k8s.rollback_guard import SchemaVerdict, check_rollback_schema, down_migrations_in
from llm_cost_ops_ops.remediation import decide

pytestmark = pytest.mark.unit


def test_policy_decisions():
    assert decide("redeploy", "dev", handled_by=None, recent=0, limit=3).job == "deploy_dev"
    assert decide("rollback", "prod", handled_by=None, recent=2, limit=3).job == "rollback_prod"
    assert decide("alert", "prod", handled_by=None, recent=0, limit=3).action == "alert"
    skipped = decide("rollback", "prod", handled_by="run r1", recent=0, limit=3)
    assert (skipped.action, skipped.reason) == ("skip", "already handled by run r1")
    limited = decide("rollback", "prod", handled_by=None, recent=3, limit=3)
    assert limited.action == "alert" and "reached the limit of 3" in limited.reason
    refused = decide(
        "rollback", "prod", handled_by=None, recent=0, limit=3, schema=SchemaVerdict(False, "no")
    )
    assert (refused.action, refused.reason) == ("alert", "prod: no")


def _release(revision: int, migrations: list[str], outcome: str = "healthy") -> Release:
    return Release("prod", f"d{revision}", "", [], outcome, revision=revision, migrations=migrations)


RELEASES = [
    _release(1, ["20250101000001_init", "20250101000002_usage"]),
    _release(2, ["20250201000001_costs"]),
    _release(3, ["20250301000001_audit"], outcome="failed"),
]


def test_guard_allows_a_target_that_knows_the_schema():
    releases = [*RELEASES[:2], _release(3, [], outcome="failed")]
    verdict = check_rollback_schema(releases, releases[1], allow_revert=False, has_down=lambda v: False)
    assert verdict.allowed and verdict.schema_version == verdict.target_version == 20250201000001
    assert check_rollback_schema(
        [_release(1, []), _release(2, [])], _release(1, []), allow_revert=False, has_down=lambda v: False
    ).allowed


def test_guard_refuses_a_target_older_than_the_schema():
    verdict = check_rollback_schema(RELEASES, RELEASES[0], allow_revert=False, has_down=lambda v: True)
    assert not verdict.allowed
    assert verdict.reason.startswith(
        "rollback refused: r1 expects schema 20250101000002, the database is at 20250301000001 "
        "(migrations since: 20250201000001, 20250301000001)"
    )
    assert verdict.to_revert == [20250201000001, 20250301000001]


def test_guard_with_revert_allowed_needs_every_down_migration():
    partial = check_rollback_schema(
        RELEASES, RELEASES[0], allow_revert=True, has_down=lambda v: v == 20250301000001
    )
    assert not partial.allowed and partial.reason.endswith("no down migration for 20250201000001")
    full = check_rollback_schema(RELEASES, RELEASES[0], allow_revert=True, has_down=lambda v: True)
    assert full.allowed


def test_down_migrations_in_a_directory(tmp_path):
    (tmp_path / "20250201000001_costs.up.sql").write_text("")
    (tmp_path / "20250201000001_costs.down.sql").write_text("")
    (tmp_path / "20250301000001_audit.sql").write_text("")
    has_down = down_migrations_in(tmp_path)
    assert has_down(20250201000001) and not has_down(20250301000001)
    assert not down_migrations_in(tmp_path / "absent")(20250201000001)
