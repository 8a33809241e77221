"""Each error sits under the parent of the layer that raises it (llm_cost_ops_ops/errors.py,
postgres/errors.py, postgres/backup_errors.py).

Cases:
- DatabaseUnavailable is a PostgresError, not a MigrationError: backups and restores raise it too
- a refused backup gate and a failed restore drill are backup errors, not configuration errors
- every migration and backup error shares the PostgresError root; InvalidDsn is both an
  unreachable database and a configuration error
- the migrate command line reports an unreachable database as its one-line error (exit 1), not a
  traceback, now that it is no MigrationError
"""

from __future__ import annotations

import socket

import pytest

from llm_cost_ops_ops.errors import ConfigError
from llm_cost_ops_ops.postgres import migrate
from llm_cost_ops_ops.postgres.backup_errors import BackupError, BackupGateRefused, DrillFailed, DumpFailed
from llm_cost_ops_ops.postgres.errors import (
    DatabaseUnavailable,
    InvalidDsn,
    MigrationError,
    MigrationFailed,
    PostgresError,
)

pytestmark = pytest.mark.unit


def test_database_unavailable_is_no_migration_error() -> None:
    assert issubclass(DatabaseUnavailable, PostgresError)
    assert not issubclass(DatabaseUnavailable, MigrationError)


@pytest.mark.parametrize("error", [BackupGateRefused, DrillFailed])
def test_gate_and_drill_are_backup_errors(error: type[Exception]) -> None:
    assert issubclass(error, BackupError)
    assert not issubclass(error, ConfigError)


@pytest.mark.parametrize("error", [MigrationFailed, DumpFailed, BackupGateRefused, DatabaseUnavailable])
def test_one_postgres_root(error: type[Exception]) -> None:
    assert issubclass(error, PostgresError)


def test_invalid_dsn_is_unreachable_and_a_config_error() -> None:
    assert issubclass(InvalidDsn, DatabaseUnavailable)
    assert issubclass(InvalidDsn, ConfigError)


def test_migrate_cli_reports_an_unreachable_database(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = migrate.main(["info", "--dsn", f"postgresql://ops:hunter2@127.0.0.1:{port}/app?connect_timeout=2"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: cannot connect to ")
    assert "hunter2" not in err
