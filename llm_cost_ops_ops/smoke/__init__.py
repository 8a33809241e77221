"""Smoke tests against a running environment: HTTP endpoints, metrics, the database, monitoring.

Plain Python (no Dagster): each check returns a `CheckResult`; `suite.run_smoke` runs the set an
environment asks for against endpoints resolved by `endpoints.resolve_endpoints`.
"""
