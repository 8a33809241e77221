"""The names Dagster knows this project's things by: every asset key and the run tags.

One module, imported by every definitions module and importing none of them, so the modules that
build assets (bundles, deploy, schema, backups, status) never import each other for a name.

Asset keys are single-part, environment first (`dev_manifests`, `dev_deployed`, `dev_schema`,
`dev_backups`, `dev_backups_verified`, `dev_status`): the UI's asset graph labels a node by the last
part of its key, so that part must say both the stage and the environment.
"""

from __future__ import annotations

import dagster as dg

# The run queue admits one run per value of this tag (dagster.yaml: tag_concurrency_limits): one
# deploy, rollback, migration, heal or teardown of an environment at a time.
ENV_LOCK_TAG = "llm-cost-ops-ops/env-lock"
# Operations that write to a cluster or database are never retried as a whole run.
NO_RETRY_TAGS = {"dagster/max_retries": "0"}
REMEDIATION_TAG = "llm-cost-ops-ops/remediation"
REMEDIATION_KEY_TAG = "llm-cost-ops-ops/remediation-key"
REASON_TAG = "llm-cost-ops-ops/remediation-reason"

STAGES = ("manifests", "deployed", "schema", "backups", "backups_verified", "status")
# The blocking checks of every `<env>_manifests` (defs/bundles.CHECKS says what each does).
BUNDLE_CHECKS = ("schema", "policy", "contract", "references")


def _key(environment: str, stage: str) -> dg.AssetKey:
    return dg.AssetKey(f"{environment}_{stage}")


def manifests_key(environment: str) -> dg.AssetKey:
    """The rendered, checked bundle of `environment`."""
    return _key(environment, "manifests")


def deployed_key(environment: str) -> dg.AssetKey:
    """The release running in `environment`."""
    return _key(environment, "deployed")


def schema_key(environment: str) -> dg.AssetKey:
    """The database schema of `environment`."""
    return _key(environment, "schema")


def backups_key(environment: str) -> dg.AssetKey:
    """The nightly backups of `environment` (daily partitions)."""
    return _key(environment, "backups")


def verified_key(environment: str) -> dg.AssetKey:
    """The newest backup of `environment` that a restore drill verified."""
    return _key(environment, "backups_verified")


def status_key(environment: str) -> dg.AssetKey:
    """The at-a-glance status of `environment`."""
    return _key(environment, "status")


def environment_keys(environment: str) -> list[dg.AssetKey]:
    """Every asset of `environment` but its status, upstream first."""
    return [
        manifests_key(environment),
        deployed_key(environment),
        schema_key(environment),
        backups_key(environment),
        verified_key(environment),
    ]


def drift_check_key(environment: str) -> dg.AssetCheckKey:
    return dg.AssetCheckKey(deployed_key(environment), "drift")


def env_pool(environment: str) -> str:
    """The Dagster pool of the steps that change `environment` (one at a time)."""
    return f"env-{environment}"


def operation_tags(environment: str, operation: str) -> dict[str, str]:
    """Run tags of an operation on one environment that does not take the env-lock."""
    return {"env": environment, "operation": operation}


def env_tags(environment: str, operation: str) -> dict[str, str]:
    """Run tags of an operation that takes the env-lock (deploy, rollback, migrate, heal, teardown)."""
    return {**operation_tags(environment, operation), ENV_LOCK_TAG: environment}
