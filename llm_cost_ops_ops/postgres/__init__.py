"""PostgreSQL for the platform: the sqlx-compatible migration runner. No Dagster imports here.

`source` reads a directory of sqlx migrations, `ledger` speaks sqlx's `_sqlx_migrations` table and
advisory lock, `migrator` applies, reverts and validates, `migrate` is its command line.
"""
