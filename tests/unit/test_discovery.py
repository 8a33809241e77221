"""Discovery once per run (llm_cost_ops_ops.k8s.discovery), against the API server double over HTTP.

Cases:
- core and group kinds are found with their scope and subresources, one GET of /api/v1 or
  /apis/<group>/<version> per group version, however many kinds and connections ask; nothing asks
  for /api, /apis or /version;
- a group version the server does not serve (a CRD not installed) is None, asked about once;
- two connections sharing one Discovery fetch each document once between them, and both can use
  what it found (get, list, apply); a connection made alone discovers for itself;
- a discovery request that fails for good (401) raises ApiError naming the group version.
"""

from __future__ import annotations

import re

import pytest
from kubernetes import client

from llm_cost_ops_ops.k8s.client import Kube
from llm_cost_ops_ops.k8s.discovery import Discovery
from llm_cost_ops_ops.k8s.errors import ApiError
from tests.k8s_double import ApiServer

pytestmark = pytest.mark.unit

NS = "app"


@pytest.fixture
def server():
    with ApiServer() as running:
        running.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        yield running


def connect(server: ApiServer, discovery: Discovery | None = None) -> Kube:
    return Kube(client.ApiClient(server.client_configuration()), sleeper=lambda _: None, discovery=discovery)


DISCOVERY = re.compile(r"^/(version|api|apis|api/v1|apis/[^/]+|apis/[^/]+/[^/]+)$")


def discovery_paths(server: ApiServer) -> list[str]:
    return [r.path for r in server.requests if r.method == "GET" and DISCOVERY.match(r.path)]


def test_kinds_are_found_with_one_request_per_group_version(server):
    kube = connect(server)
    server.reset_counters()

    pod = kube.resource("v1", "Pod")
    config_map = kube.resource("v1", "ConfigMap")
    namespace = kube.resource("v1", "Namespace")
    deployment = kube.resource("apps/v1", "Deployment")
    stateful_set = kube.resource("apps/v1", "StatefulSet")

    assert (pod.namespaced, namespace.namespaced, config_map.name) == (True, False, "configmaps")
    assert (deployment.group, deployment.api_version, deployment.name) == ("apps", "v1", "deployments")
    assert "status" in pod.subresources and "scale" in deployment.subresources
    assert stateful_set.kind == "StatefulSet"
    assert discovery_paths(server) == ["/api/v1", "/apis/apps/v1"]


def test_a_group_version_not_served_is_none_and_asked_about_once(server):
    kube = connect(server)
    server.reset_counters()

    assert kube.resource("monitoring.coreos.com/v1", "ServiceMonitor") is None
    assert kube.resource("monitoring.coreos.com/v1", "PodMonitor") is None
    assert kube.resource("v1", "NoSuchKind") is None

    assert discovery_paths(server) == ["/apis/monitoring.coreos.com/v1", "/api/v1"]


def test_connections_sharing_a_discovery_fetch_each_document_once(server):
    shared = Discovery()
    first, second = connect(server, shared), connect(server, shared)
    server.reset_counters()

    first.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": NS}})
    assert second.get("v1", "ConfigMap", "a", NS)["metadata"]["name"] == "a"
    assert [c["metadata"]["name"] for c in second.list("v1", "ConfigMap", NS)] == ["a"]
    assert second.get("apps/v1", "Deployment", "none", NS) is None
    assert first.resource("apps/v1", "Deployment") is second.resource("apps/v1", "Deployment")

    assert discovery_paths(server) == ["/api/v1", "/apis/apps/v1"]
    alone = connect(server)
    alone.resource("v1", "ConfigMap")
    assert discovery_paths(server) == ["/api/v1", "/apis/apps/v1", "/api/v1"]


def test_a_discovery_that_fails_for_good_names_the_group_version():
    with ApiServer(token="the-token") as guarded:
        configuration = guarded.client_configuration()
        configuration.api_key = {"BearerToken": "a-wrong-token"}
        kube = Kube(client.ApiClient(configuration), sleeper=lambda _: None)

        with pytest.raises(ApiError, match="discovery of apps/v1") as failed:
            kube.resource("apps/v1", "Deployment")

    assert failed.value.status == 401
