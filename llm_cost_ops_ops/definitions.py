"""The code location: assembles the definitions; does no rendering or cluster calls at load."""

import dagster as dg

from . import process_env
from .defs.backup_storage import BackupStorageResource
from .defs.backups import backup_definitions
from .defs.bundles import bundle_definitions
from .defs.databases import DatabaseResource
from .defs.deploy import deploy_definitions
from .defs.jobs import render_jobs
from .defs.kubernetes import KubernetesResource
from .defs.notify import NotifierResource, notification_definitions
from .defs.resources import BundleIOManager, PlatformManifests
from .defs.schedules import schedule_definitions
from .defs.schema import schema_definitions
from .defs.sensors import sensor_definitions
from .defs.smoke import SmokeResource, smoke_after_rollback, smoke_definitions
from .defs.status import status_definitions
from .defs.teardown import teardown_definitions
from .environments import load_environments
from .operator_declaration import load_operator
from .schedules import load_schedules

ENVIRONMENTS = load_environments()
# Which environments this instance operates (LLM_COST_OPS_OPS_OPERATES): automation that writes is
# on only there.
OPERATOR = load_operator(ENVIRONMENTS)


def _secret(name: str) -> dg.EnvVar | str:
    """A secret read from the environment at run time; empty (the feature off) when unset.

    dg.EnvVar keeps the value out of the UI's resource config; an unset EnvVar would fail every
    run and sensor that uses the resource, so an absent variable means "not configured".
    """
    return dg.EnvVar(name) if process_env.is_set(name) else ""


def _operations() -> dg.Definitions:
    """Everything but the schedules (built in a function: Dagster's module loader accepts only one
    Definitions object at module scope)."""
    return dg.Definitions.merge(
        *(bundle_definitions(spec) for spec in ENVIRONMENTS.values()),
        *(
            deploy_definitions(spec, ENVIRONMENTS, after_rollback=smoke_after_rollback(spec))
            for spec in ENVIRONMENTS.values()
        ),
        *(schema_definitions(spec) for spec in ENVIRONMENTS.values()),
        *(teardown_definitions(spec) for spec in ENVIRONMENTS.values()),
        *(backup_definitions(spec) for spec in ENVIRONMENTS.values()),
        *(smoke_definitions(spec) for spec in ENVIRONMENTS.values()),
        *(sensor_definitions(spec, operator=OPERATOR) for spec in ENVIRONMENTS.values()),
        notification_definitions(ENVIRONMENTS),
        dg.Definitions(
            jobs=render_jobs(ENVIRONMENTS),
            # Steps are short and sequential (render, check, apply); a process per step would cost more
            # than the work. Isolation per run comes from the run launcher (a Kubernetes Job per run).
            executor=dg.in_process_executor,
            resources={
                "manifests": PlatformManifests(),
                "bundle_io_manager": BundleIOManager(),
                "kubernetes": KubernetesResource(),
                "databases": DatabaseResource(),
                "backups": BackupStorageResource(
                    kind="s3" if process_env.backup_bucket() else "local",
                    bucket=process_env.backup_bucket(),
                    endpoint_url=process_env.backup_endpoint_url(),
                    access_key_id=_secret("LLM_COST_OPS_OPS_BACKUP_ACCESS_KEY_ID"),
                    secret_access_key=_secret("LLM_COST_OPS_OPS_BACKUP_SECRET_ACCESS_KEY"),
                ),
                "smoke": SmokeResource(
                    database_url=_secret("LLM_COST_OPS_OPS_SMOKE_DATABASE_URL"),
                    api_token=_secret("LLM_COST_OPS_OPS_SMOKE_API_TOKEN"),
                ),
                "notifier": NotifierResource(
                    webhook_url=_secret("LLM_COST_OPS_OPS_WEBHOOK_URL"),
                    slack_webhook_url=_secret("LLM_COST_OPS_OPS_SLACK_WEBHOOK_URL"),
                    dagster_url=process_env.dagster_url(),
                ),
            },
        ),
    )


def _with_status(operations: dg.Definitions) -> dg.Definitions:
    # Each environment's status judges every check on its assets, whichever module defines it.
    checks = operations.resolve_asset_graph().asset_check_keys
    return dg.Definitions.merge(
        operations, *(status_definitions(spec, checks) for spec in ENVIRONMENTS.values())
    )


def _with_schedules(operations: dg.Definitions) -> dg.Definitions:
    # Schedules are data (schedules/*.yaml); a schedule whose job, environment or run config do not
    # agree fails loading, naming file and line. A job's `env` tag is the environment it runs in.
    jobs = {job.name: (job.tags or {}).get("env") for job in operations.jobs or []}
    kinds = {job.name: (job.tags or {}).get("operation") for job in operations.jobs or []}
    schedules = schedule_definitions(
        load_schedules(), jobs, ENVIRONMENTS, job_operations=kinds, operator=OPERATOR
    )
    return dg.Definitions.merge(operations, dg.Definitions(schedules=schedules))


defs = _with_schedules(_with_status(_operations()))
