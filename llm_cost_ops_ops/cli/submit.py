"""Submit a run of a job to the Dagster instance, as the webserver does.

The workspace (workspace.yaml) is loaded the way the webserver and the daemon load it, so the run
belongs to the code location: it shows in the job's history, goes through the instance's run queue
(QueuedRunCoordinator and its tag concurrency limits) and is seen by the location's sensors.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import dagster as dg
from dagster._cli.job import _create_run
from dagster._core.remote_representation.external_data import partition_set_snap_name_for_job_name
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster.version import __version__ as dagster_version

from ..config_yaml import read_yaml
from ..errors import ConfigError

PARTITION_TAG = "dagster/partition"


class SubmitError(ConfigError):
    """The run could not be submitted: unknown job, bad run config, a code location that fails to load."""


def _merge(base: dict, more: dict) -> dict:
    merged = dict(base)
    for name, value in more.items():
        both = isinstance(value, dict) and isinstance(merged.get(name), dict)
        merged[name] = _merge(merged[name], value) if both else value
    return merged


def run_config_from_files(paths: Sequence[Path]) -> dict:
    """The run config: the YAML files merged in order, a later file's values winning."""
    config: dict = {}
    for path in paths:
        if not path.is_file():
            raise SubmitError(f"{path}: no such run config file")
        loaded = read_yaml(path) or {}
        if not isinstance(loaded, dict):
            raise SubmitError(f"{path}: a run config is a mapping (ops: ..., resources: ...)")
        config = _merge(config, loaded)
    return config


def _one_line(error: object) -> str:
    text = str(getattr(error, "message", None) or error)
    return " ".join(line.strip() for line in text.strip().splitlines()[:6] if line.strip())


def _default_partition(repository, job_name: str, tags: Mapping[str, str]) -> dict[str, str]:
    """A partitioned job run without `--partition` runs for the newest partition (a backup: today's,
    so the day it was taken shows it); a job whose partitions are not days must be given one."""
    name = partition_set_snap_name_for_job_name(job_name)
    if PARTITION_TAG in tags or not repository.has_partition_set(name):
        return {}
    partitions = repository.get_partition_set(name)
    if not partitions.has_partitions_definition():
        return {}
    definition = partitions.get_partitions_definition()
    if not isinstance(definition, dg.TimeWindowPartitionsDefinition):
        raise SubmitError(f"{job_name} is partitioned: name the partition with --partition")
    newest = definition.get_last_partition_key()
    if newest is None:
        raise SubmitError(f"{job_name}: no partition exists yet; name one with --partition")
    return {PARTITION_TAG: newest}


def submit_run(
    instance: dg.DagsterInstance,
    workspace_file: Path,
    job_name: str,
    run_config: Mapping,
    tags: Mapping[str, str],
    before_submit: Callable[[dg.DagsterRun], None] = lambda run: None,
) -> dg.DagsterRun:
    """Create the run in `instance` for `job_name` of the workspace's one code location, call
    `before_submit` with it, and submit it to the run queue. Raises SubmitError naming the job, the
    config error or the location's load error."""
    target = WorkspaceFileTarget(paths=[str(workspace_file)])
    with WorkspaceProcessContext(
        instance,
        version=dagster_version,
        read_only=False,
        workspace_load_target=target,
        code_server_log_level="WARNING",
    ) as process_context:
        workspace = process_context.create_request_context()
        entries = workspace.get_code_location_entries()
        if len(entries) != 1:
            raise SubmitError(f"{workspace_file}: expected one code location, found {sorted(entries)}")
        [location_name] = entries
        error = workspace.get_code_location_error(location_name)
        if error is not None:
            raise SubmitError(f"code location {location_name} failed to load: {_one_line(error)}")
        location = workspace.get_code_location(location_name)
        [repository] = location.get_repositories().values()
        if not repository.has_job(job_name):
            names = sorted(job.name for job in repository.get_all_jobs() if not job.name.startswith("__"))
            raise SubmitError(f"no job {job_name!r} in {location_name}; jobs: {', '.join(names)}")
        remote_job = repository.get_full_job(job_name)
        tags = {**tags, **_default_partition(repository, job_name, tags)}
        try:
            run = _create_run(
                instance=instance,
                code_location=location,
                remote_repo=repository,
                remote_job=remote_job,
                run_config=dict(run_config),
                tags=dict(tags),
                op_selection=None,
                run_id=str(uuid.uuid4()),
            )
        except dg.DagsterInvalidConfigError as exc:
            details = "; ".join(_one_line(e.message) for e in exc.errors[:3])
            raise SubmitError(f"{job_name}: run config rejected: {details}") from None
        except dg.DagsterUserCodeProcessError as exc:
            raise SubmitError(f"{job_name}: {_one_line(exc)}") from None
        before_submit(run)
        return instance.submit_run(run.run_id, workspace)
