"""The one judge of what a step retries: transient database, storage and Kubernetes API errors
only. Everything else (a missing DSN, a config error, a refused gate, a damaged backup, a failed
migration) fails at once, through `dg.Failure(allow_retries=False)`, whatever the retry policy."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

TRANSIENT_RETRY = dg.RetryPolicy(max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL)


def is_transient(error: BaseException) -> bool:
    """Whether the same step may succeed when run again unchanged."""
    import psycopg

    from ..errors import ConfigError
    from ..k8s.errors import ApiError
    from ..postgres.backup_errors import DumpFailed
    from ..postgres.errors import DatabaseUnavailable, MigrationLockTimeout
    from ..storage.errors import StorageUnavailable

    if isinstance(error, ApiError):
        return error.transient
    if isinstance(error, ConfigError):  # a DSN that does not parse, a missing setting: permanent
        return False
    # A dump cut short by a dropped connection is worth another attempt; a refused one is not
    # (BackupRefused and PgToolMissing are not DumpFailed).
    transient = (DatabaseUnavailable, MigrationLockTimeout, StorageUnavailable, DumpFailed)
    return isinstance(error, (*transient, psycopg.OperationalError))


@contextmanager
def retried_only_when_transient() -> Iterator[None]:
    """Re-raise transient errors for the step's RetryPolicy; turn every other error into a
    Failure that is never retried (its message the error's own one line)."""
    try:
        yield
    except dg.Failure:
        raise
    except Exception as exc:
        if is_transient(exc):
            raise
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
