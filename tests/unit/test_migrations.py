"""The sqlx-compatible migration runner (llm_cost_ops_ops.postgres) against real PostgreSQL: a fresh
database per test from the `pg_database` fixture.

Expected values are computed here independently of the runner: checksums with hashlib.sha384 of
the file bytes, descriptions from the file names, the lock key with a bitwise CRC-32.

Cases:
- the lock key: sqlx's 0x3d32ad9e * crc32(database name) for a known name, against a bitwise CRC-32
  and a literal; the runner really waits on that key (held by another session -> MigrationLockTimeout
  naming the holder, nothing created) and runs once it is released;
- the platform schema (migrations/) on a fresh database: extensions, tables, the CONCURRENTLY index
  valid, `_sqlx_migrations` with sqlx's exact columns and a row per up file equal byte for byte to
  (version, description, success, sha384, execution_time > 0); a re-run is a no-op that leaves the
  ledger untouched; every version `applied` in info(); it reverts (no-transaction downs included)
  down to the extensions, whose missing .down.sql refuses a revert to 0;
- a ledger written by sqlx itself (execution_time -1) for the first versions: the runner applies only
  the rest;
- file names: descriptions as sqlx derives them; README and directories ignored; a malformed name,
  duplicate version, empty description or orphan .down.sql -> MalformedMigrationName naming the file;
- a changed file, a dirty row, an applied version missing from the directory: validate(), run() and
  revert() refuse with sqlx's sentence, the version and the file; nothing pending is applied; info()
  marks them changed / dirty / missing;
- `-- no-transaction`: CREATE INDEX CONCURRENTLY applies (and the same file without the marker fails
  inside its transaction);
- out of order: an older pending version is applied (as sqlx does) and logged; a run target older
  than the newest applied version is refused; an unknown target is refused;
- two runners at once (threads): each migration applied exactly once (a side-effect table and the
  ledger), the second runner waits for the first and applies nothing;
- revert: newest first down to the target, tables gone, ledger rows removed, run again restores;
  a dry run changes nothing; a missing .down.sql refuses before anything is reverted;
- failing SQL: MigrationFailed names file:line:column (characters, after non-ASCII text) and
  PostgreSQL's message; the migration's earlier statements, its ledger row and later migrations are
  absent; fixing the file and running again applies the rest;
- the DSN's password never appears in log lines or errors (run, failure, lock timeout, connection
  refused), and mask_dsn masks URL, query and key/value forms;
- dry run on a fresh database lists everything and creates nothing; the CLI's info/run/validate.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from pathlib import Path

import psycopg
import pytest

from llm_cost_ops_ops.postgres import migrate as cli
from llm_cost_ops_ops.postgres.connection import mask_dsn
from llm_cost_ops_ops.postgres.errors import (
    ChangedMigration,
    DatabaseUnavailable,
    DirtyMigration,
    MalformedMigrationName,
    MigrationFailed,
    MigrationLockTimeout,
    MigrationTargetError,
    MissingDownMigration,
    MissingMigration,
)
from llm_cost_ops_ops.postgres.ledger import lock_id
from llm_cost_ops_ops.postgres.migrator import Migrator
from llm_cost_ops_ops.postgres.source import load_migrations

pytestmark = pytest.mark.unit

PLATFORM = Path(__file__).resolve().parents[2] / "migrations"
SQLX_COLUMNS = [
    ("version", "bigint", "NO", None),
    ("description", "text", "NO", None),
    ("installed_on", "timestamp with time zone", "NO", "now()"),
    ("success", "boolean", "NO", None),
    ("checksum", "bytea", "NO", None),
    ("execution_time", "bigint", "NO", None),
]


# --- helpers -----------------------------------------------------------------------------------


def crc32_bitwise(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def ledger(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        if conn.execute("SELECT to_regclass('_sqlx_migrations')").fetchone()[0] is None:
            return []
        rows = conn.execute(
            "SELECT version, description, success, checksum, execution_time, installed_on "
            "FROM _sqlx_migrations ORDER BY version"
        ).fetchall()
    return [(v, d, s, bytes(c), t, i) for v, d, s, c, t, i in rows]


def versions(dsn: str) -> list[int]:
    return [row[0] for row in ledger(dsn)]


def scalar(dsn: str, query: str, *params: object) -> object:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchone()[0]


def table_exists(dsn: str, name: str) -> bool:
    return scalar(dsn, "SELECT to_regclass(%s) IS NOT NULL", name) is True


def expected_description(name: str) -> str:
    rest = name.split("_", 1)[1]
    for suffix in (".up.sql", ".down.sql", ".sql"):
        if rest.endswith(suffix):
            return rest[: -len(suffix)].replace("_", " ")
    raise AssertionError(name)


@pytest.fixture
def tables(tmp_path: Path) -> Path:
    """Three reversible migrations creating t1, t2, t3."""
    for n in (1, 2, 3):
        write(tmp_path, f"{n}_create_t{n}.up.sql", f"CREATE TABLE t{n} (id int PRIMARY KEY);\n")
        write(tmp_path, f"{n}_create_t{n}.down.sql", f"DROP TABLE t{n};\n")
    return tmp_path


# --- the lock key ------------------------------------------------------------------------------


def test_lock_id_is_sqlx_generate_lock_id():
    assert crc32_bitwise(b"123456789") == 0xCBF43926  # the CRC-32/ISO-HDLC check value
    expected = 0x3D32AD9E * crc32_bitwise(b"llm_cost_ops")
    assert expected == 294555498064790842 < 2**63
    assert lock_id("llm_cost_ops") == expected
    assert lock_id("postgres") == 0x3D32AD9E * crc32_bitwise(b"postgres")


def test_runner_waits_on_sqlx_lock_key(pg_database: str, tables: Path):
    database = pg_database.rsplit("/", 1)[1]
    key = 0x3D32AD9E * crc32_bitwise(database.encode())
    lines: list[str] = []
    with psycopg.connect(pg_database, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (key,))
        holder_pid = holder.info.backend_pid
        with pytest.raises(MigrationLockTimeout) as caught:
            Migrator(pg_database, tables, lock_timeout_seconds=0.2, log=lines.append).run()
        assert f"pid {holder_pid}" in str(caught.value) and str(key) in str(caught.value)
        assert any("waiting up to 0.2s" in line for line in lines)
        assert not table_exists(pg_database, "_sqlx_migrations")
    assert Migrator(pg_database, tables, lock_timeout_seconds=5).run().versions == [1, 2, 3]


# --- the platform schema -----------------------------------------------------------------------


def test_platform_schema_on_fresh_database(pg_database: str):
    report = Migrator(pg_database).run()
    files = sorted(p for p in PLATFORM.glob("*.sql") if not p.name.endswith(".down.sql"))
    assert report.versions == [int(p.name.split("_", 1)[0]) for p in files]
    for extension in ("uuid-ossp", "pgcrypto"):
        assert scalar(pg_database, "SELECT count(*) FROM pg_extension WHERE extname = %s", extension) == 1
    for table in ("usage_records", "cost_records", "pricing_tables", "audit_logs"):
        assert table_exists(pg_database, table)
    assert table_exists(pg_database, "gdpr_consent_records") and table_exists(
        pg_database, "gdpr_data_requests"
    )
    valid = "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)"
    assert scalar(pg_database, valid, "idx_usage_records_model_time") is True
    assert scalar(pg_database, valid, "idx_usage_records_org_time") is True

    with psycopg.connect(pg_database) as conn:
        columns = conn.execute(
            "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns "
            "WHERE table_name = '_sqlx_migrations' ORDER BY ordinal_position"
        ).fetchall()
        primary_key = conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = '_sqlx_migrations'::regclass AND i.indisprimary"
        ).fetchall()
    assert columns == SQLX_COLUMNS and primary_key == [("version",)]

    rows = ledger(pg_database)
    expected = [
        (
            int(p.name.split("_", 1)[0]),
            expected_description(p.name),
            True,
            hashlib.sha384(p.read_bytes()).digest(),
        )
        for p in files
    ]
    assert [row[:4] for row in rows] == expected
    assert all(row[4] > 0 for row in rows)

    again = Migrator(pg_database).run()
    assert again.steps == () and ledger(pg_database) == rows
    assert {s.state for s in Migrator(pg_database).info()} == {"applied"}
    Migrator(pg_database).validate()


def test_platform_schema_reverts_down_to_its_extensions(pg_database: str):
    migrator = Migrator(pg_database)
    migrator.run()
    with pytest.raises(MissingDownMigration, match=re.escape("20250115000001_enable_extensions.sql")):
        migrator.revert(0)
    report = migrator.revert(20250115000001)
    assert report.versions == sorted(report.versions, reverse=True) and len(report.versions) == 8
    assert [s.no_transaction for s in report.steps][:2] == [True, True]
    assert versions(pg_database) == [20250115000001]
    assert not any(table_exists(pg_database, t) for t in ("usage_records", "cost_records", "audit_logs"))
    assert len(migrator.run().versions) == 8


def test_continues_a_ledger_written_by_sqlx(pg_database: str):
    files = sorted(p for p in PLATFORM.glob("*.sql") if not p.name.endswith(".down.sql"))
    first = files[:3]
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, "
            "installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL, "
            "checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL)"
        )
        for path in first:
            conn.execute(path.read_bytes())
            conn.execute(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) "
                "VALUES (%s, %s, TRUE, %s, -1)",
                (
                    int(path.name.split("_", 1)[0]),
                    expected_description(path.name),
                    hashlib.sha384(path.read_bytes()).digest(),
                ),
            )
    report = Migrator(pg_database).run()
    assert report.versions == [int(p.name.split("_", 1)[0]) for p in files[3:]]
    assert len(ledger(pg_database)) == len(files)


# --- file names --------------------------------------------------------------------------------


def test_descriptions_and_ignored_files(tmp_path: Path):
    write(tmp_path, "20250115000001_create_usage_records.up.sql", "SELECT 1;")
    write(tmp_path, "20250115000001_create_usage_records.down.sql", "SELECT 1;")
    write(tmp_path, "0002_seed_default_pricing.sql", "SELECT 2;")
    write(tmp_path, "3_double.sql.sql", "SELECT 3;")  # Rust's trim_end_matches trims repeatedly
    write(tmp_path, "README.md", "not a migration")
    (tmp_path / "4_directory.sql").mkdir()
    found = [(m.version, m.description, m.kind) for m in load_migrations(tmp_path)]
    assert found == [
        (2, "seed default pricing", "simple"),
        (3, "double", "simple"),
        (20250115000001, "create usage records", "up"),
        (20250115000001, "create usage records", "down"),
    ]


@pytest.mark.parametrize(
    "names, culprit",
    [
        (["abc_create_things.sql"], "abc_create_things.sql"),
        (["create_things.sql"], "create_things.sql"),
        (["createthings.sql"], "createthings.sql"),
        (["0_zero.sql"], "0_zero.sql"),
        (["-1_negative.sql"], "-1_negative.sql"),
        (["5_.sql"], "5_.sql"),
        (["7_one.sql", "7_two.up.sql"], "7_two.up.sql"),
        (["8_orphan.down.sql"], "8_orphan.down.sql"),
    ],
)
def test_malformed_names_refused(tmp_path: Path, pg_database: str, names: list[str], culprit: str):
    for name in names:
        write(tmp_path, name, "SELECT 1;")
    with pytest.raises(MalformedMigrationName, match=re.escape(culprit)):
        load_migrations(tmp_path)
    with pytest.raises(MalformedMigrationName):
        Migrator(pg_database, tmp_path).run()
    assert ledger(pg_database) == []


# --- ledger problems ---------------------------------------------------------------------------


def test_changed_file_detected(pg_database: str, tables: Path):
    migrator = Migrator(pg_database, tables)
    migrator.run(target=2)
    write(tables, "2_create_t2.up.sql", "CREATE TABLE t2 (id bigint PRIMARY KEY);\n")
    sentence = "migration 2 was previously applied but has been modified (2_create_t2.up.sql"
    for call in (migrator.validate, migrator.run, lambda: migrator.revert(0)):
        with pytest.raises(ChangedMigration, match=re.escape(sentence)):
            call()
    assert versions(pg_database) == [1, 2] and not table_exists(pg_database, "t3")
    assert [s.state for s in migrator.info()] == ["applied", "changed", "pending"]


def test_dirty_row_detected(pg_database: str, tables: Path):
    migrator = Migrator(pg_database, tables)
    migrator.run(target=2)
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("UPDATE _sqlx_migrations SET success = false WHERE version = 2")
    sentence = "migration 2 is partially applied; fix and remove row from `_sqlx_migrations` table"
    for call in (migrator.validate, migrator.run):
        with pytest.raises(DirtyMigration, match=re.escape(sentence)) as caught:
            call()
        assert "2_create_t2.up.sql" in str(caught.value) and caught.value.version == 2
    assert versions(pg_database) == [1, 2] and not table_exists(pg_database, "t3")
    assert [s.state for s in migrator.info()] == ["applied", "dirty", "pending"]


def test_missing_version_detected(pg_database: str, tables: Path):
    migrator = Migrator(pg_database, tables)
    migrator.run(target=2)
    (tables / "2_create_t2.up.sql").unlink()
    (tables / "2_create_t2.down.sql").unlink()
    sentence = "migration 2 was previously applied but is missing in the resolved migrations"
    for call in (migrator.validate, migrator.run):
        with pytest.raises(MissingMigration, match=re.escape(sentence)):
            call()
    assert not table_exists(pg_database, "t3")
    assert [(s.version, s.state) for s in migrator.info()] == [(1, "applied"), (2, "missing"), (3, "pending")]


# --- no-transaction, out of order, concurrency -------------------------------------------------


def test_no_transaction_migration(pg_database: str, tmp_path: Path):
    index = "CREATE INDEX CONCURRENTLY idx_t_v ON t (v);\n"
    write(tmp_path, "1_create_t.sql", "CREATE TABLE t (id int PRIMARY KEY, v text);\n")
    write(tmp_path, "2_index_t.sql", index)
    with pytest.raises(MigrationFailed, match="cannot run inside a transaction block"):
        Migrator(pg_database, tmp_path).run()
    assert versions(pg_database) == [1]
    write(tmp_path, "2_index_t.sql", "-- no-transaction\n" + index)
    report = Migrator(pg_database, tmp_path).run()
    assert report.versions == [2] and report.steps[0].no_transaction
    assert scalar(pg_database, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_t_v'::regclass")
    assert ledger(pg_database)[1][3] == hashlib.sha384((tmp_path / "2_index_t.sql").read_bytes()).digest()


def test_out_of_order_version_applied_as_sqlx_does(pg_database: str, tables: Path):
    (tables / "2_create_t2.up.sql").rename(tables.parent / "held_back.sql")
    (tables / "2_create_t2.down.sql").unlink()
    Migrator(pg_database, tables).run()
    assert versions(pg_database) == [1, 3]
    (tables.parent / "held_back.sql").rename(tables / "2_create_t2.sql")
    lines: list[str] = []
    assert Migrator(pg_database, tables, log=lines.append).run().versions == [2]
    assert any("2_create_t2.sql is older than the newest applied migration 3" in line for line in lines)
    with pytest.raises(
        MigrationTargetError, match="migration 1 is older than the latest applied migration 3"
    ):
        Migrator(pg_database, tables).run(target=1)
    with pytest.raises(MigrationTargetError, match="migration 9 is not present"):
        Migrator(pg_database, tables).run(target=9)


def test_two_runners_apply_each_migration_once(pg_database: str, tmp_path: Path):
    write(tmp_path, "1_create_runs.sql", "CREATE TABLE runs (v int);\n")
    write(tmp_path, "2_record.sql", "-- no-transaction\nINSERT INTO runs VALUES (2);\n")
    write(tmp_path, "3_record.sql", "INSERT INTO runs VALUES (3);\n")
    database = pg_database.rsplit("/", 1)[1]
    reports, errors, lines = [], [], []

    def runner() -> None:
        try:
            reports.append(Migrator(pg_database, tmp_path, lock_timeout_seconds=20, log=lines.append).run())
        except Exception as exc:  # the assertion below shows it
            errors.append(exc)

    # A second session holds the lock until both runners wait on it (seen in pg_locks, not
    # guessed from a sleep); then whichever gets it first applies everything, the other nothing.
    with psycopg.connect(pg_database, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (lock_id(database),))
        threads = [threading.Thread(target=runner) for _ in range(2)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 15
        waiting = 0
        while waiting < 2 and time.monotonic() < deadline:
            waiting = holder.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                "WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = %s",
                (database,),
            ).fetchone()[0]
        assert waiting == 2, "both runners should be waiting on the migration lock"
        holder.execute("SELECT pg_advisory_unlock(%s)", (lock_id(database),))
    for thread in threads:
        thread.join(timeout=20)
    assert errors == []
    assert sorted(v for report in reports for v in report.versions) == [1, 2, 3]
    assert sorted(len(report.versions) for report in reports) == [0, 3]
    with psycopg.connect(pg_database) as conn:
        assert conn.execute("SELECT v FROM runs ORDER BY v").fetchall() == [(2,), (3,)]
    assert versions(pg_database) == [1, 2, 3]
    assert sum("is held by pid" in line for line in lines) == 2


# --- revert ------------------------------------------------------------------------------------


def test_revert_to_target_and_back(pg_database: str, tables: Path):
    migrator = Migrator(pg_database, tables)
    migrator.run()
    dry = migrator.revert(1, dry_run=True)
    assert dry.versions == [3, 2] and versions(pg_database) == [1, 2, 3]
    report = migrator.revert(1)
    assert report.versions == [3, 2] and report.latest_version == 1
    assert versions(pg_database) == [1]
    assert table_exists(pg_database, "t1") and not table_exists(pg_database, "t2")
    with pytest.raises(
        MigrationTargetError, match="migration 3 is newer than the latest applied migration 1"
    ):
        migrator.revert(3)
    assert migrator.revert(0).versions == [1] and versions(pg_database) == []
    assert migrator.run().versions == [1, 2, 3]


def test_revert_refuses_missing_down_before_touching_anything(pg_database: str, tables: Path):
    (tables / "2_create_t2.down.sql").unlink()
    migrator = Migrator(pg_database, tables)
    migrator.run()
    before = ledger(pg_database)
    with pytest.raises(MissingDownMigration, match=r"no \.down\.sql for 2_create_t2\.up\.sql"):
        migrator.revert(0)
    assert ledger(pg_database) == before and table_exists(pg_database, "t3")
    assert migrator.revert(2).versions == [3]


# --- failures and secrets ----------------------------------------------------------------------


def test_failing_sql_names_file_line_column_and_leaves_nothing(pg_database: str, tables: Path):
    broken = (
        "-- Add a price column and backfill it. café ☕\n"
        "ALTER TABLE t1 ADD COLUMN price numeric;\n"
        "\n"
        "UPDATE t1 SET price = 'é' || nope;\n"
    )
    path = write(tables, "2_create_t2.up.sql", broken)
    column = broken.splitlines()[3].index("nope") + 1
    with pytest.raises(MigrationFailed) as caught:
        Migrator(pg_database, tables).run()
    error = caught.value
    assert (error.file, error.line, error.column, error.sqlstate) == (str(path), 4, column, "42703")
    assert f'{path}:4:{column}: migration 2 failed: column "nope" does not exist' in str(error)
    assert "rolled back" in str(error) and "\n" not in str(error)
    assert versions(pg_database) == [1]
    assert (
        scalar(pg_database, "SELECT count(*) FROM information_schema.columns WHERE column_name = 'price'")
        == 0
    )
    assert not table_exists(pg_database, "t3")
    write(tables, "2_create_t2.up.sql", "CREATE TABLE t2 (id int PRIMARY KEY);\n")
    assert Migrator(pg_database, tables).run().versions == [2, 3]


def test_password_never_shown(pg_database: str, tables: Path):
    secret = "s3cr3t-Passw0rd"
    dsn = pg_database.replace("://postgres@", f"://postgres:{secret}@")  # trust auth ignores it
    lines: list[str] = []
    messages: list[str] = []
    Migrator(dsn, tables, log=lines.append).run(target=1)
    write(tables, "2_create_t2.up.sql", f"SELECT '{secret}'::int;\n")
    with pytest.raises(MigrationFailed) as failed:
        Migrator(dsn, tables, log=lines.append).run()
    messages.append(str(failed.value))
    database = pg_database.rsplit("/", 1)[1]
    with psycopg.connect(pg_database, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (lock_id(database),))
        with pytest.raises(MigrationLockTimeout) as locked:
            Migrator(dsn, tables, lock_timeout_seconds=0.1, log=lines.append).run()
        messages.append(str(locked.value))
    closed = re.sub(r":(\d+)/", ":1/", dsn)
    with pytest.raises(DatabaseUnavailable) as refused:
        Migrator(closed, tables).info()
    messages.append(str(refused.value))
    assert "postgres:***@127.0.0.1:1/" in messages[-1]
    with pytest.raises(DatabaseUnavailable) as invalid:
        Migrator(f"host=127.0.0.1 password={secret} port", tables).info()
    messages.append(str(invalid.value))
    assert lines and all(secret not in text for text in lines + messages)
    assert (
        mask_dsn(f"postgresql://u:{secret}@h/db?sslmode=require") == "postgresql://u:***@h/db?sslmode=require"
    )
    assert mask_dsn(f"postgresql://u@h/db?password={secret}&x=1") == "postgresql://u@h/db?password=***&x=1"
    assert mask_dsn(f"host=h password='{secret} x' user=u") == "host=h password=*** user=u"


def test_dry_run_changes_nothing_and_cli(pg_database: str, tables: Path, capsys: pytest.CaptureFixture):
    report = Migrator(pg_database, tables).run(dry_run=True)
    assert report.versions == [1, 2, 3] and report.dry_run
    assert not table_exists(pg_database, "_sqlx_migrations") and not table_exists(pg_database, "t1")
    base = ["--dsn", pg_database, "--dir", str(tables)]
    assert cli.main(["run", "--target", "2", *base]) == 0
    assert "2 migrations applied" in capsys.readouterr().out
    assert cli.main(["info", *base]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in out] == [["1", "applied"], ["2", "applied"], ["3", "pending"]]
    write(tables, "1_create_t1.up.sql", "CREATE TABLE t1 (id bigint);\n")
    assert cli.main(["validate", *base]) == 1
    assert "migration 1 was previously applied but has been modified" in capsys.readouterr().err
