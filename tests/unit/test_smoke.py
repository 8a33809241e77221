"""The smoke library (llm_cost_ops_ops.smoke) against the application stub (tests/app_stub.py) over
real HTTP, a throwaway PostgreSQL, and the API-server double for the port-forward's target lookup.

Cases:
- every check passes against a healthy stub: dev (no monitoring) runs 8 checks, staging with
  monitoring 10, an environment with api_writes adds write_api; metadata carries status, latency,
  expected and seen;
- faults: 500 fails the probes, /info and the read call; a slow API fails on the latency budget;
  a wrong version fails info_version naming both versions; an image tag naming no version accepts
  any; a missing metric family and malformed metrics text fail `metrics`; a down scrape target
  fails prometheus_targets; a failing Grafana fails `grafana`; an unreachable API is "no answer";
- the write check posts one marked record with the bearer token, and fails on 401; the token never
  appears in results;
- version_of_image for tags, digests, registries with ports, `latest`;
- the database: ledger at the expected version passes; no ledger table, a dirty row, an older
  version and wrong credentials fail, the password never in the result; the expected version is
  the newest migration file (.down.sql ignored);
- endpoints: configured URLs win; in the cluster, service DNS names; outside, a port-forward per
  service; outside without a cluster, a SmokeError naming the missing field; the application's
  DATABASE_URL is read from its Secret and re-pointed at the forward, credentials kept;
- the relay copies HTTP both ways; the Kubernetes forwarder picks a ready pod behind the Service
  and resolves a named target port (the double serves no port-forward stream itself).
"""

from __future__ import annotations

import base64
import socket

import httpx
import psycopg
import pytest
from kubernetes import client

from llm_cost_ops_ops.k8s.client import Kube
from llm_cost_ops_ops.smoke import checks
from llm_cost_ops_ops.smoke.database import check_database, latest_migration_version
from llm_cost_ops_ops.smoke.endpoints import EndpointResolver, Endpoints, with_address
from llm_cost_ops_ops.smoke.http import HttpProbe
from llm_cost_ops_ops.smoke.portforward import KubernetesForwarder
from llm_cost_ops_ops.smoke.relay import TcpRelay
from llm_cost_ops_ops.smoke.results import SmokeError
from llm_cost_ops_ops.smoke.suite import SmokeTarget, check_names, run_smoke
from tests.app_stub import AppStub

pytestmark = pytest.mark.unit

TOKEN = "s3cr3t-api-token-value"


@pytest.fixture
def stub():
    with AppStub(version="1.4.2", slow_seconds=0.3) as running:
        yield running


def _spec(spec, **operations):
    return spec.model_copy(update={"operations": spec.operations.model_copy(update=operations)})


def _target(stub: AppStub, version: str | None = "1.4.2") -> SmokeTarget:
    urls = stub.operations()
    endpoints = Endpoints(urls["base_url"], urls["metrics_url"], urls["prometheus_url"], urls["grafana_url"])
    return SmokeTarget(endpoints, version, None, None, "no database in this test")


def _by_name(results):
    return {r.name: r for r in results}


def _api_results(spec, stub, budget=1.0, version="1.4.2", token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else None
    with HttpProbe(budget, headers=headers) as http:
        results = _by_name(run_smoke(spec, _target(stub, version), http))
    results.pop("database")
    return results


def test_healthy_environment_passes_every_http_check(env_specs, stub):
    dev, staging = env_specs["dev"], env_specs["staging"]
    assert check_names(dev) == ["health", "ready", "live", "info_version", "metrics", "read_api", "database"]
    assert check_names(staging)[-2:] == ["prometheus_targets", "grafana"]
    assert "write_api" in check_names(_spec(dev, api_writes=True))
    results = _api_results(staging, stub)
    assert all(r.passed for r in results.values()), [str(r) for r in results.values() if not r.passed]
    meta = results["health"].metadata()
    assert meta["status"] == "passed" and meta["expected"] == "HTTP 200 within 1000 ms"
    assert meta["seen"].startswith("HTTP 200 in") and meta["latency_ms"] >= 0
    assert results["info_version"].seen == "version 1.4.2"
    assert results["prometheus_targets"].seen == "2 of 2 targets up"


def test_server_errors_fail_probes_info_and_reads(env_specs, stub):
    with stub.fault("500"):
        results = _api_results(env_specs["dev"], stub)
    for name in ("health", "ready", "live", "info_version", "read_api"):
        assert not results[name].passed, name
    assert results["health"].seen.startswith("HTTP 500")
    assert results["metrics"].passed  # the metrics port is another listener


def test_slow_answers_fail_the_latency_budget(env_specs, stub):
    with stub.fault("slow"):
        results = _api_results(env_specs["dev"], stub, budget=0.1)
    assert not results["ready"].passed
    # Slow either way: answered past the budget, or not before the probe's own timeout (under load).
    seen = results["ready"].seen
    assert "over the 100 ms budget" in seen or "ReadTimeout" in seen, seen
    assert results["ready"].latency_seconds >= 0.3


def test_wrong_version_fails_info_version(env_specs, stub):
    with stub.fault("wrong-version"):
        result = _api_results(env_specs["dev"], stub)["info_version"]
    assert not result.passed
    assert (result.expected, result.seen) == ("version 1.4.2", "version 0.0.1-wrong")
    with stub.fault("wrong-version"):
        assert _api_results(env_specs["dev"], stub, version=None)["info_version"].passed


@pytest.mark.parametrize(
    ("fault", "seen"),
    [("missing-family", "missing http_request_duration_seconds"), ("malformed-metrics", "unparseable")],
)
def test_bad_metrics_fail(env_specs, stub, fault, seen):
    with stub.fault(fault):
        result = _api_results(env_specs["dev"], stub)["metrics"]
    assert not result.passed
    assert seen in result.seen


def test_monitoring_faults(env_specs, stub):
    with stub.fault("target-down", "grafana-down"):
        results = _api_results(env_specs["staging"], stub)
    assert not results["prometheus_targets"].passed
    assert (
        "1 of 2 targets up; down: llm-cost-ops-0: down connection refused"
        in results["prometheus_targets"].seen
    )
    assert not results["grafana"].passed
    assert results["grafana"].seen.startswith("HTTP 503")


def test_unreachable_api_is_no_answer():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with HttpProbe(0.5) as http:
        result = checks.check_probe(http, f"http://127.0.0.1:{port}", "health")
    assert not result.passed
    assert result.seen.startswith("no answer (ConnectError")


def test_write_check_posts_a_marked_record_with_the_token(env_specs, stub):
    spec = _spec(env_specs["dev"], api_writes=True)
    results = _api_results(spec, stub, token=TOKEN)
    assert results["write_api"].passed
    assert stub.posted[0]["metadata"] == {"source": "llm-cost-ops-ops smoke test"}
    posts = [headers for role, method, _, headers in stub.requests if method == "POST"]
    assert posts[0]["Authorization"] == f"Bearer {TOKEN}"
    with stub.fault("unauthorized"):
        denied = _api_results(spec, stub, token=TOKEN)
    assert not denied["write_api"].passed and denied["write_api"].seen.startswith("HTTP 401")
    assert TOKEN not in repr([r.metadata() for r in denied.values()]) + repr(denied)


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("ghcr.io/llm-cost-ops/llm-cost-ops:1.4.2", "1.4.2"),
        ("ghcr.io/llm-cost-ops/llm-cost-ops:v2.0.0-rc.1", "2.0.0-rc.1"),
        ("registry:5000/llm-cost-ops:1.5.0@sha256:abc", "1.5.0"),
        ("registry:5000/llm-cost-ops", None),
        ("ghcr.io/llm-cost-ops/llm-cost-ops:latest", None),
    ],
)
def test_version_of_image(image, version):
    assert checks.version_of_image(image) == version


# --- database ----------------------------------------------------------------------------------


def _ledger(dsn: str, rows: list[tuple[int, bool]]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, "
            "installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL, "
            "checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL)"
        )
        for version, success in rows:
            conn.execute(
                "INSERT INTO _sqlx_migrations VALUES (%s, 'm', now(), %s, '\\x00', 1)", (version, success)
            )


def test_database_ledger(pg_database):
    assert "no _sqlx_migrations table" in check_database(pg_database, 2).seen
    _ledger(pg_database, [(20250115000001, True), (20250115000002, True)])
    passed = check_database(pg_database, 20250115000002)
    assert passed.passed and passed.seen == "version 20250115000002 (2 applied)"
    older = check_database(pg_database, 20250115000003)
    assert not older.passed and older.expected == "ledger at version 20250115000003, no dirty row"
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("INSERT INTO _sqlx_migrations VALUES (20250115000003, 'm', now(), false, '\\x00', 1)")
    dirty = check_database(pg_database, 20250115000002)
    assert not dirty.passed and dirty.seen.endswith("dirty: 20250115000003")


def test_database_wrong_credentials_never_show_the_password(pg_database):
    # The throwaway server trusts local connections, so an unknown role is what fails to log in.
    wrong = pg_database.replace("postgres@", "no_such_app:Wr0ngPassw0rd@")
    result = check_database(wrong, None)
    assert not result.passed
    assert result.seen.startswith("OperationalError") and "no_such_app" in result.seen
    assert "Wr0ngPassw0rd" not in repr(result)


def test_expected_version_is_the_newest_migration_file(tmp_path):
    assert latest_migration_version(tmp_path / "absent") is None
    for name in ("20250115000001_init.sql", "20250115000002_usage.up.sql", "20250115000003_x.down.sql"):
        (tmp_path / name).write_text("select 1;")
    assert latest_migration_version(tmp_path) == 20250115000002


# --- endpoints and port-forward ----------------------------------------------------------------


class FakeForwarder:
    def __init__(self):
        self.forwards: list[tuple[str, str, int]] = []

    def forward(self, namespace, service, port):
        self.forwards.append((namespace, service, port))
        return "127.0.0.1", 40000 + len(self.forwards)

    def close(self):
        pass


def test_endpoint_resolution(env_specs):
    staging = env_specs["staging"]
    configured = _spec(staging, base_url="https://api.example.com/", metrics_url="http://m:9090")
    inside = EndpointResolver(configured, inside_cluster=True, forwarder=None).endpoints()
    assert (inside.api, inside.metrics) == ("https://api.example.com", "http://m:9090")
    assert inside.prometheus == "http://prometheus.llm-cost-ops-staging.svc:9090"
    forwarder = FakeForwarder()
    outside = EndpointResolver(staging, inside_cluster=False, forwarder=forwarder).endpoints()
    assert outside.api == "http://127.0.0.1:40001" and outside.grafana == "http://127.0.0.1:40004"
    assert forwarder.forwards == [
        ("llm-cost-ops-staging", "llm-cost-ops", 8080),
        ("llm-cost-ops-staging", "llm-cost-ops", 9090),
        ("llm-cost-ops-staging", "prometheus", 9090),
        ("llm-cost-ops-staging", "grafana", 3000),
    ]
    with pytest.raises(SmokeError, match=r"staging: no operations.base_url in environments.yaml"):
        EndpointResolver(staging, inside_cluster=False, forwarder=None).endpoints()
    assert with_address("postgres://u:p@db:5432/app?sslmode=require", "127.0.0.1", 40005) == (
        "postgres://u:p@127.0.0.1:40005/app?sslmode=require"
    )
    assert with_address("postgresql://db/app", "127.0.0.1", 1) == "postgresql://127.0.0.1:1/app"


def test_application_dsn_comes_from_the_secret_and_follows_the_forward(env_specs, k8s_server):
    dev = env_specs["dev"]
    dsn = "postgres://llm_cost_ops:pa55@postgres:5432/llm_cost_ops?sslmode=disable"
    k8s_server.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": dev.namespace}})
    k8s_server.seed(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "llm-cost-ops-secrets", "namespace": dev.namespace},
            "data": {"DATABASE_URL": base64.b64encode(dsn.encode()).decode()},
        }
    )
    kube = Kube(client.ApiClient(k8s_server.client_configuration()))
    assert EndpointResolver(dev, inside_cluster=True, forwarder=None).application_dsn(kube) == dsn
    outside = EndpointResolver(dev, inside_cluster=False, forwarder=FakeForwarder()).application_dsn(kube)
    assert outside == "postgres://llm_cost_ops:pa55@127.0.0.1:40001/llm_cost_ops?sslmode=disable"
    with pytest.raises(SmokeError, match="Secret llm-cost-ops-prod/llm-cost-ops-secrets does not exist"):
        EndpointResolver(env_specs["prod"], inside_cluster=True, forwarder=None).application_dsn(kube)


def test_relay_carries_http_both_ways(stub):
    address = ("127.0.0.1", int(stub.url("api").rsplit(":", 1)[1]))
    with TcpRelay(lambda: socket.create_connection(address)) as relay:
        for _ in range(3):
            response = httpx.get(f"http://127.0.0.1:{relay.port}/info", timeout=2)
            assert response.json()["version"] == "1.4.2"


def test_forwarder_targets_a_ready_pod_and_its_named_port(k8s_server):
    ns = "default"
    k8s_server.seed(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "llm-cost-ops", "namespace": ns},
            "spec": {
                "selector": {"app": "api"},
                "ports": [{"name": "metrics", "port": 9090, "targetPort": "metrics"}],
            },
        }
    )
    for name, ready in (("api-a", "False"), ("api-b", "True")):
        pod = k8s_server.seed(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": ns, "labels": {"app": "api"}},
                "spec": {
                    "containers": [
                        {"name": "api", "image": "x", "ports": [{"name": "metrics", "containerPort": 9191}]}
                    ]
                },
            }
        )
        k8s_server.write_status(
            pod, {"phase": "Running", "conditions": [{"type": "Ready", "status": ready}]}, manager="kubelet"
        )
    forwarder = KubernetesForwarder(Kube(client.ApiClient(k8s_server.client_configuration())))
    assert forwarder._target(ns, "llm-cost-ops", 9090) == ("api-b", 9191)
    with pytest.raises(SmokeError, match="has no port 8080"):
        forwarder._target(ns, "llm-cost-ops", 8080)
    with pytest.raises(SmokeError, match="Service default/grafana does not exist"):
        forwarder.forward(ns, "grafana", 3000)
    # The double serves no port-forward stream (the API server refuses it): one error naming the
    # forward and the server's answer, before any check tries the relay.
    with pytest.raises(
        SmokeError,
        match=r"port-forward to pod default/api-b port 9191 \(Service llm-cost-ops\) failed: the API server answered",
    ):
        forwarder.forward(ns, "llm-cost-ops", 9090)
    assert forwarder._relays == []
