"""The process environment, read in one place.

Every environment variable the package reads is read here, by a function that says what it is
for; the rest of the package calls these functions (tests/unit/test_process_env.py fails on an
`os.environ` or `os.getenv` anywhere else). Resource secrets still reach Dagster as `dg.EnvVar` in
definitions.py, so their values stay out of the UI's resource config; this module only tells
definitions.py whether such a variable is set.

Nothing is cached: every call reads the environment as it is now, so a test's monkeypatched
variable is seen.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

ROOT = "LLM_COST_OPS_OPS_ROOT"
DAGSTER_URL = "LLM_COST_OPS_OPS_DAGSTER_URL"
BACKUP_BUCKET = "LLM_COST_OPS_OPS_BACKUP_BUCKET"
BACKUP_ENDPOINT_URL = "LLM_COST_OPS_OPS_BACKUP_ENDPOINT_URL"
DEFAULT_DAGSTER_URL = "http://127.0.0.1:3000"


def environ() -> Mapping[str, str]:
    """The whole environment, for functions that take an `environ` mapping (tests pass their own)."""
    return os.environ


def value(name: str) -> str:
    """Variable `name`, "" when unset: for names that come from data, such as the DSN variable an
    environment's spec names (`migrations.dsn_env`, default LLM_COST_OPS_OPS_<ENV>_DATABASE_URL)."""
    return os.environ.get(name, "")


def is_set(name: str) -> bool:
    """Whether variable `name` holds a non-empty value."""
    return bool(os.environ.get(name))


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of the environment for a child process, with `extra` set on top."""
    return {**os.environ, **(extra or {})}


def project_root_override() -> str:
    """LLM_COST_OPS_OPS_ROOT: where a deployed code location keeps manifests/ and environments.yaml."""
    return value(ROOT)


def dagster_home() -> str:
    """DAGSTER_HOME, "" when unset."""
    return value("DAGSTER_HOME")


def dagster_url() -> str:
    """LLM_COST_OPS_OPS_DAGSTER_URL: the Dagster UI that notifications link to."""
    return value(DAGSTER_URL) or DEFAULT_DAGSTER_URL


def backup_bucket() -> str:
    """LLM_COST_OPS_OPS_BACKUP_BUCKET: the S3 bucket of backups ("" for the local directory store)."""
    return value(BACKUP_BUCKET)


def backup_endpoint_url() -> str:
    """LLM_COST_OPS_OPS_BACKUP_ENDPOINT_URL: an S3-compatible endpoint ("" for AWS)."""
    return value(BACKUP_ENDPOINT_URL)


def pg_bindir() -> str:
    """PG_BINDIR: a directory searched first for pg_dump, pg_restore and psql."""
    return value("PG_BINDIR")


def database_url() -> str:
    """DATABASE_URL: the migration command line's default DSN."""
    return value("DATABASE_URL")


def kubeconfig_paths() -> list[str]:
    """The files KUBECONFIG lists (os.pathsep-separated, kubectl's order); [] when unset."""
    return [path for path in value("KUBECONFIG").split(os.pathsep) if path]


def in_kubernetes_pod() -> bool:
    """Whether this process runs in a Kubernetes pod (the kubelet sets KUBERNETES_SERVICE_HOST)."""
    return is_set("KUBERNETES_SERVICE_HOST")
