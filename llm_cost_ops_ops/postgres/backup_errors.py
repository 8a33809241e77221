"""Typed errors of backups, restores and restore drills.

An unreachable database raises the package's DatabaseUnavailable (from `errors`, DSN masked);
storage failures raise the storage layer's errors. Neither carries a password or a key.
"""

from __future__ import annotations

from .errors import PostgresError


class BackupError(PostgresError):
    """Base of the errors raised by backup, restore and drill."""


class BackupRefused(BackupError):
    """The backup as configured would store a secret unprotected (role passwords, no key)."""


class PgToolMissing(BackupError):
    """No pg_dump / pg_restore at least as new as the server: older ones refuse or lose data."""


class DumpFailed(BackupError):
    """pg_dump or pg_dumpall exited non-zero, was killed, or wrote something that is not a dump."""


class RestoreRefused(BackupError):
    """The restore target exists and its name was not repeated as confirmation."""


class RestoreFailed(BackupError):
    """pg_restore or the globals script failed; a database this restore created is dropped."""


class BackupGateRefused(BackupError):
    """No recent enough backup exists and the environment's policy is to refuse the migration."""


class DrillFailed(BackupError):
    """A restore drill ran and the restored copy did not match the backup's manifest."""
