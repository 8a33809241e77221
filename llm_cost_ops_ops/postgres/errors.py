"""The PostgreSQL library's error root, the connection errors, and the typed migration errors.

Ledger problems carry sqlx's own wording, so an operator who knows `sqlx migrate` recognises them;
every message names the version and the file. The backup errors (`backup_errors`) share the root.
"""

from __future__ import annotations

from ..errors import ConfigError, OpsError


class PostgresError(OpsError):
    """Base of every error the PostgreSQL library raises (migrations, backups, restores, drills)."""


class DatabaseUnavailable(PostgresError):
    """The database could not be reached or refused the connection (the DSN shown is masked)."""


class InvalidDsn(DatabaseUnavailable, ConfigError):
    """The DSN does not parse: a configuration error, never worth a retry."""


class MigrationError(PostgresError):
    """Base of every error the migration runner raises."""


class MigrationSourceError(MigrationError):
    """The migrations directory cannot be read as sqlx migrations (missing, unreadable, not UTF-8)."""


class MalformedMigrationName(MigrationSourceError):
    """A `.sql` file whose name is not `<version>_<description>.sql`, a duplicated version, or a
    `.down.sql` without its `.up.sql`."""


class LedgerProblem(MigrationError):
    """The ledger disagrees with the directory; what `validate()` and the blocking check report."""

    def __init__(self, message: str, version: int, file: str = ""):
        super().__init__(message)
        self.version = version
        self.file = file


class DirtyMigration(LedgerProblem):
    """A ledger row has success = false (sqlx's `Dirty`)."""


class MissingMigration(LedgerProblem):
    """An applied version has no file in the directory (sqlx's `VersionMissing`)."""


class ChangedMigration(LedgerProblem):
    """An applied migration's file no longer has the recorded checksum (sqlx's `VersionMismatch`)."""


class MigrationTargetError(MigrationError):
    """A target version that is unknown, older than the newest applied (run) or newer (revert)."""


class MissingDownMigration(MigrationError):
    """A revert would need a `.down.sql` that does not exist; nothing was reverted."""


class MigrationFailed(MigrationError):
    """A migration's SQL failed. Its transaction was rolled back and no ledger row was written
    (a `-- no-transaction` migration may have left the statements before the failing one)."""

    def __init__(
        self,
        message: str,
        *,
        version: int,
        file: str,
        line: int | None = None,
        column: int | None = None,
        sqlstate: str = "",
        pg_message: str = "",
    ):
        super().__init__(message)
        self.version = version
        self.file = file
        self.line = line
        self.column = column
        self.sqlstate = sqlstate
        self.pg_message = pg_message


class MigrationLockTimeout(MigrationError):
    """Another migrator held the database's migration lock past the timeout."""
