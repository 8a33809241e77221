"""Shared fixtures for every level of the suite.

- `project_root`: the checkout holding manifests/, environments.yaml and jobs/.
- `env_specs`: the environment specs loaded from the real environments.yaml.
- `render_overlays`: the three real overlays rendered once per session (kustomize runs in parallel).
- `render_fixture`: renders a fixture overlay directory as one of the real environments.
- `all_findings`: runs the schema, policy, contract and references checks on a bundle.
- `pg_admin_dsn` / `pg_database`: a PostgreSQL server for the session, a fresh database per test.
- `s3_server`: a SeaweedFS S3 server for the session (`s3_server.new_bucket()` per test).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from llm_cost_ops_ops.bundles import render as render_lib
from llm_cost_ops_ops.bundles.checks import run_checks
from llm_cost_ops_ops.bundles.findings import Finding
from llm_cost_ops_ops.bundles.model import RenderedBundle
from llm_cost_ops_ops.bundles.schema import ensure_known_kinds
from llm_cost_ops_ops.environments import EnvironmentSpec, load_environments

pytest_plugins = ["tests.k8s_double.fixtures", "tests.control_plane.fixtures"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ("dev", "staging", "prod")


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def env_specs(project_root: Path) -> dict[str, EnvironmentSpec]:
    return load_environments(project_root / "environments.yaml")


@pytest.fixture(scope="session")
def render_overlays(project_root: Path, env_specs: dict[str, EnvironmentSpec]) -> dict[str, RenderedBundle]:
    """dev, staging and prod rendered from the real overlays, once for the whole session."""
    overlays = {name: spec.overlay_path(project_root) for name, spec in env_specs.items()}
    bundles = render_lib.render_overlays(overlays, root=project_root)
    for name, bundle in bundles.items():
        ensure_known_kinds(bundle, env_specs[name].kubernetes_version)
    return bundles


@pytest.fixture(scope="session")
def render_fixture(project_root: Path) -> Callable[[EnvironmentSpec, Path], RenderedBundle]:
    """Render an overlay directory as the given environment, refusing unknown kinds like the asset."""

    def _render(spec: EnvironmentSpec, overlay: Path) -> RenderedBundle:
        bundle = render_lib.render_overlay(spec.name, overlay, root=project_root)
        ensure_known_kinds(bundle, spec.kubernetes_version)
        return bundle

    return _render


@pytest.fixture(scope="session")
def all_findings() -> Callable[[RenderedBundle, EnvironmentSpec], list[Finding]]:
    """Every finding of the checks the bundle asset runs, in schema, policy, contract, references order."""

    def _run(bundle: RenderedBundle, spec: EnvironmentSpec) -> list[Finding]:
        return run_checks(bundle, spec, PROJECT_ROOT)

    return _run


@pytest.fixture(scope="session")
def pg_admin_dsn():
    """An admin DSN: $LLM_COST_OPS_OPS_TEST_DSN, or a throwaway server started for the session."""
    from tests.postgres_server import DSN_ENV, ThrowawayPostgres

    if os.environ.get(DSN_ENV):
        yield os.environ[DSN_ENV]
        return
    server = ThrowawayPostgres().start()
    try:
        yield server.dsn
    finally:
        server.stop()


@pytest.fixture
def pg_database(pg_admin_dsn: str):
    """A fresh, empty database for one test (dropped afterwards); yields its DSN."""
    import uuid

    import psycopg
    from psycopg import sql

    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield pg_admin_dsn.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def s3_server():
    """A SeaweedFS S3 server on free loopback ports for the session (tests/s3_server.py)."""
    from tests.s3_server import SeaweedS3

    server = SeaweedS3().start()
    try:
        yield server
    finally:
        server.stop()
