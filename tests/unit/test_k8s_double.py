"""The Kubernetes API server double, driven only through the official `kubernetes` client.

Cases:
- discovery: DynamicClient finds built-in kinds with their subresources; /version is configurable
- kubeconfig: context `double` reaches the server, context `other` does not
- create, get, list with label selectors (=, ==, !=, in, notin, exists, !exists) and field selectors
- create conflicts (409 AlreadyExists), writes into a missing namespace (404 NotFound Status)
- every write bumps resourceVersion; a replace with a stale resourceVersion is 409 Conflict
- generation moves only with spec; the status subresource changes only status; main writes
  ignore incoming status
- strategic merge patch merges containers by name
- server-side apply: creates, records managedFields, is a no-op when repeated, removes fields a
  manager stops applying, requires fieldManager, conflicts with another manager (409 with causes)
  until forced
- dry-run on create, patch, apply and delete writes nothing; a rejected object fails on dry-run too
- custom resources 404 until their CRD is installed
- watch replays ADDED/MODIFIED/DELETED from a resourceVersion, filtered by labelSelector, and
  streams live events
- deleting a namespace removes what it contains
- the controller simulator rolls a Deployment out; a crashloop injection leaves the new revision's
  pods in CrashLoopBackOff while the old ones keep serving; image-pull and progress-deadline
  injections show up in pod and Deployment status; StatefulSets and Jobs complete
- pod logs honour tailLines and container
- fault injection (fail_next, writes_only, after_write, inject, seeded fail_ratio) and request
  counting
"""

from __future__ import annotations

import json
import threading

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError
from urllib3.exceptions import MaxRetryError

from tests.k8s_double import ApiServer, ControllerSimulator

pytestmark = pytest.mark.unit

NS = "app"


@pytest.fixture
def server():
    with ApiServer() as running:
        running.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        yield running


@pytest.fixture
def api(server):
    with client.ApiClient(server.client_configuration()) as api_client:
        yield api_client


@pytest.fixture
def core(api):
    return client.CoreV1Api(api)


@pytest.fixture
def apps(api):
    return client.AppsV1Api(api)


@pytest.fixture
def dynamic(api, tmp_path):
    return DynamicClient(api, cache_file=str(tmp_path / "discovery.json"))


def deployment(name="web", image="nginx:1.25", replicas=2) -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": name, "image": image}]},
            },
        },
    }


def config_map(name, labels=None, data=None) -> dict:
    return {"metadata": {"name": name, "labels": labels or {}}, "data": data or {"k": "v"}}


def status_of(error: ApiException) -> dict:
    return json.loads(error.body)


def test_discovery_finds_builtin_kinds_and_subresources(server, api, dynamic):
    deployments = dynamic.resources.get(api_version="apps/v1", kind="Deployment")
    pods = dynamic.resources.get(api_version="v1", kind="Pod")
    hpa = dynamic.resources.get(api_version="autoscaling/v2", kind="HorizontalPodAutoscaler")

    assert deployments.namespaced and deployments.name == "deployments"
    assert set(deployments.subresources) == {"status", "scale"}
    assert {"log", "exec", "status"} <= set(pods.subresources)
    assert "watch" in hpa.verbs
    for api_version, kind in [("batch/v1", "CronJob"), ("coordination.k8s.io/v1", "Lease")]:
        assert dynamic.resources.get(api_version=api_version, kind=kind).kind == kind
    assert client.VersionApi(api).get_code().git_version == "v1.30.0"


def test_version_is_configurable():
    with ApiServer(version="1.29.4") as older, client.ApiClient(older.client_configuration()) as api:
        code = client.VersionApi(api).get_code()
    assert (code.major, code.minor, code.git_version) == ("1", "29", "v1.29.4")


def test_kubeconfig_context_double_reaches_the_server_and_other_does_not(server, tmp_path):
    path = server.kubeconfig(tmp_path / "kubeconfig")

    with config.new_client_from_config(str(path)) as default_client:
        names = [ns.metadata.name for ns in client.CoreV1Api(default_client).list_namespace().items]
    assert NS in names and "default" in names
    other = config.new_client_from_config(str(path), context="other")
    other.configuration.retries = 0
    with pytest.raises(MaxRetryError):
        client.CoreV1Api(other).list_namespace(_request_timeout=2)


def test_list_filters_by_label_and_field_selectors(core):
    core.create_namespaced_config_map(NS, config_map("a", {"env": "prod", "tier": "web"}))
    core.create_namespaced_config_map(NS, config_map("b", {"env": "staging"}))
    core.create_namespaced_config_map(NS, config_map("c", {"env": "dev", "tier": "db"}))

    def names(**selectors):
        return sorted(cm.metadata.name for cm in core.list_namespaced_config_map(NS, **selectors).items)

    assert names(label_selector="env=prod") == ["a"]
    assert names(label_selector="env==staging") == ["b"]
    assert names(label_selector="env!=prod") == ["b", "c"]
    assert names(label_selector="env in (prod, staging)") == ["a", "b"]
    assert names(label_selector="env notin (prod),tier") == ["c"]
    assert names(label_selector="!tier") == ["b"]
    assert names(field_selector="metadata.name=c") == ["c"]
    assert core.read_namespaced_config_map("b", NS).data == {"k": "v"}
    listed = core.list_config_map_for_all_namespaces(label_selector="tier")
    assert len(listed.items) == 2 and int(listed.metadata.resource_version) > 0
    with pytest.raises(ApiException) as bad:
        core.list_namespaced_config_map(NS, field_selector="data.k=v")
    assert bad.value.status == 400


def test_create_twice_is_already_exists_and_missing_namespace_is_not_found(core):
    core.create_namespaced_config_map(NS, config_map("settings"))

    with pytest.raises(ApiException) as exists:
        core.create_namespaced_config_map(NS, config_map("settings"))
    with pytest.raises(ApiException) as missing:
        core.create_namespaced_config_map("nowhere", config_map("settings"))

    assert exists.value.status == 409
    assert status_of(exists.value)["reason"] == "AlreadyExists"
    assert status_of(missing.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'namespaces "nowhere" not found',
        "reason": "NotFound",
        "details": {"name": "nowhere", "kind": "namespaces"},
        "code": 404,
    }


def test_writes_bump_resource_version_and_stale_replace_conflicts(server, core):
    created = core.create_namespaced_config_map(NS, config_map("settings"))
    first = int(created.metadata.resource_version)
    created.data = {"k": "v2"}
    replaced = core.replace_namespaced_config_map("settings", NS, created)

    assert int(replaced.metadata.resource_version) == first + 1 == server.resource_version
    assert replaced.metadata.uid == created.metadata.uid
    created.data = {"k": "v3"}  # still carries the first resourceVersion
    with pytest.raises(ApiException) as stale:
        core.replace_namespaced_config_map("settings", NS, created)
    assert stale.value.status == 409
    assert status_of(stale.value)["reason"] == "Conflict"
    assert "the object has been modified" in status_of(stale.value)["message"]
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_config_map("absent", NS)
    assert status_of(gone.value)["message"] == 'configmaps "absent" not found'


def test_generation_follows_spec_and_status_subresource_only_changes_status(apps):
    created = apps.create_namespaced_deployment(NS, deployment())
    assert created.metadata.generation == 1 and created.status.replicas is None

    relabelled = apps.patch_namespaced_deployment("web", NS, {"metadata": {"labels": {"team": "a"}}})
    assert relabelled.metadata.generation == 1
    rescaled = apps.patch_namespaced_deployment("web", NS, {"spec": {"replicas": 3}})
    assert rescaled.metadata.generation == 2

    rescaled.status = client.V1DeploymentStatus(replicas=3, observed_generation=2)
    rescaled.spec.replicas = 9  # ignored by the status subresource
    with_status = apps.replace_namespaced_deployment_status("web", NS, rescaled)
    assert (with_status.status.replicas, with_status.spec.replicas) == (3, 3)
    assert with_status.metadata.generation == 2
    assert int(with_status.metadata.resource_version) > int(rescaled.metadata.resource_version)

    patched = apps.patch_namespaced_deployment_status("web", NS, {"status": {"readyReplicas": 1}})
    assert patched.status.ready_replicas == 1 and patched.metadata.generation == 2
    ignored = apps.patch_namespaced_deployment("web", NS, {"status": {"replicas": 42}})
    assert ignored.status.replicas == 3
    assert ignored.metadata.resource_version == patched.metadata.resource_version  # a no-op


def test_strategic_merge_patch_merges_containers_by_name(apps):
    body = deployment()
    body["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "envoy:1"})
    apps.create_namespaced_deployment(NS, body)

    patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.26"}]}}}}
    patched = apps.patch_namespaced_deployment("web", NS, patch)

    images = {c.name: c.image for c in patched.spec.template.spec.containers}
    assert images == {"web": "nginx:1.26", "sidecar": "envoy:1"}
    assert patched.metadata.generation == 2


def test_server_side_apply_creates_updates_and_owns_fields(server, dynamic):
    deployments = dynamic.resources.get(api_version="apps/v1", kind="Deployment")

    created = deployments.server_side_apply(body=deployment(), field_manager="deployer")
    assert created.metadata.generation == 1
    [entry] = created.to_dict()["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"]) == ("deployer", "Apply")
    assert "f:replicas" in entry["fieldsV1"]["f:spec"]

    again = deployments.server_side_apply(body=deployment(), field_manager="deployer")
    assert again.metadata.resourceVersion == created.metadata.resourceVersion

    labelled = deployment()
    labelled["metadata"]["labels"] = {"a": "1", "b": "2"}
    deployments.server_side_apply(body=labelled, field_manager="deployer")
    labelled["metadata"]["labels"] = {"a": "1"}
    updated = deployments.server_side_apply(body=labelled, field_manager="deployer")
    assert dict(updated.metadata.labels) == {"a": "1"}
    assert updated.metadata.generation == 1


def test_server_side_apply_requires_a_field_manager(apps):
    with pytest.raises(ApiException) as missing:
        apps.patch_namespaced_deployment(
            "web", NS, deployment(), _content_type="application/apply-patch+yaml"
        )
    # The real server answers 422 Invalid for PatchOptions, not 400.
    assert missing.value.status == 422
    assert status_of(missing.value)["details"]["causes"][0]["field"] == "fieldManager"


def test_server_side_apply_conflict_lists_fields_until_forced(apps):
    apply = "application/apply-patch+yaml"
    apps.patch_namespaced_deployment("web", NS, deployment(), field_manager="deployer", _content_type=apply)
    scaled = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": 5},
    }

    with pytest.raises(ApiException) as conflict:
        apps.patch_namespaced_deployment("web", NS, scaled, field_manager="autoscaler", _content_type=apply)
    body = status_of(conflict.value)
    assert conflict.value.status == 409 and body["reason"] == "Conflict"
    assert body["details"]["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "deployer" using apps/v1',
            "field": ".spec.replicas",
        }
    ]

    same_value = {**scaled, "spec": {"replicas": 2}}
    apps.patch_namespaced_deployment("web", NS, same_value, field_manager="autoscaler", _content_type=apply)
    forced = apps.patch_namespaced_deployment(
        "web", NS, scaled, field_manager="autoscaler", force=True, _content_type=apply
    )
    assert forced.spec.replicas == 5 and forced.metadata.generation == 2
    owners = {e.manager: e.fields_v1 for e in forced.metadata.managed_fields}
    assert "f:replicas" in owners["autoscaler"]["f:spec"]
    assert "f:replicas" not in owners["deployer"]["f:spec"]


def test_dry_run_writes_nothing(server, core, apps, dynamic):
    apps.create_namespaced_deployment(NS, deployment())
    before = server.resource_version

    dry = core.create_namespaced_config_map(NS, config_map("dry"), dry_run="All")
    patched = apps.patch_namespaced_deployment("web", NS, {"spec": {"replicas": 7}}, dry_run="All")
    deployments = dynamic.resources.get(api_version="apps/v1", kind="Deployment")
    applied = deployments.server_side_apply(body=deployment("other"), field_manager="deployer", dry_run="All")
    apps.delete_namespaced_deployment("web", NS, dry_run="All")

    assert dry.metadata.uid and patched.spec.replicas == 7 and patched.metadata.generation == 2
    assert applied.metadata.name == "other"
    assert server.resource_version == before
    assert server.read("v1", "ConfigMap", "dry", NS) is None
    assert server.read("apps/v1", "Deployment", "other", NS) is None
    assert apps.read_namespaced_deployment("web", NS).spec.replicas == 2

    server.reject(lambda obj: obj["kind"] == "ConfigMap", "no config maps today", field="data")
    with pytest.raises(ApiException) as rejected:
        core.create_namespaced_config_map(NS, config_map("dry"), dry_run="All")
    assert rejected.value.status == 422
    assert status_of(rejected.value)["details"]["causes"] == [
        {"reason": "FieldValueInvalid", "message": "no config maps today", "field": "data"}
    ]


def test_custom_resources_need_their_crd(server, api, dynamic):
    custom = client.CustomObjectsApi(api)
    monitor = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "web"},
        "spec": {"endpoints": [{"port": "metrics"}]},
    }
    args = ("monitoring.coreos.com", "v1", NS, "servicemonitors")

    with pytest.raises(ApiException) as missing:
        custom.create_namespaced_custom_object(*args, monitor)
    assert missing.value.status == 404
    with pytest.raises(ResourceNotFoundError):
        dynamic.resources.get(api_version="monitoring.coreos.com/v1", kind="ServiceMonitor")

    server.install_crd("monitoring.coreos.com", "v1", "ServiceMonitor", "servicemonitors")
    created = custom.create_namespaced_custom_object(*args, monitor)
    assert created["metadata"]["generation"] == 1
    found = dynamic.resources.get(api_version="monitoring.coreos.com/v1", kind="ServiceMonitor")
    assert found.get(name="web", namespace=NS).spec.endpoints[0].port == "metrics"
    listed = custom.list_namespaced_custom_object(*args)
    assert [item["kind"] for item in listed["items"]] == ["ServiceMonitor"]


def test_watch_replays_history_filtered_by_labels(core):
    start = core.list_namespaced_config_map(NS).metadata.resource_version
    core.create_namespaced_config_map(NS, config_map("watched", {"watch": "yes"}))
    core.create_namespaced_config_map(NS, config_map("ignored"))
    core.patch_namespaced_config_map("watched", NS, {"data": {"k": "v2"}})
    core.delete_namespaced_config_map("watched", NS)

    events = []
    for event in watch.Watch().stream(
        core.list_namespaced_config_map,
        NS,
        label_selector="watch=yes",
        resource_version=start,
        timeout_seconds=5,
    ):
        events.append(event)
        if event["type"] == "DELETED":
            break

    assert [(e["type"], e["object"].metadata.name) for e in events] == [
        ("ADDED", "watched"),
        ("MODIFIED", "watched"),
        ("DELETED", "watched"),
    ]
    assert events[1]["object"].data == {"k": "v2"}


def test_watch_streams_live_events(core):
    stream = watch.Watch()
    seen: list[tuple[str, str]] = []
    ready = threading.Event()

    def follow():
        for event in stream.stream(core.list_namespaced_config_map, NS, timeout_seconds=5):
            seen.append((event["type"], event["object"].metadata.name))
            ready.set()
            if event["type"] == "DELETED":
                stream.stop()

    core.create_namespaced_config_map(NS, config_map("first"))
    follower = threading.Thread(target=follow)
    follower.start()
    assert ready.wait(2)  # the initial ADDED for existing objects
    core.create_namespaced_config_map(NS, config_map("second"))
    core.delete_namespaced_config_map("first", NS)
    follower.join(5)

    assert seen == [("ADDED", "first"), ("ADDED", "second"), ("DELETED", "first")]


def test_deleting_a_namespace_removes_its_contents(server, core):
    core.create_namespace({"metadata": {"name": "scratch"}})
    core.create_namespaced_config_map("scratch", config_map("doomed"))

    core.delete_namespace("scratch")

    assert server.read("v1", "ConfigMap", "doomed", "scratch") is None
    assert "scratch" not in [ns.metadata.name for ns in core.list_namespace().items]


def test_controller_rolls_out_a_deployment(server, apps, core):
    apps.create_namespaced_deployment(NS, deployment(replicas=3))
    sim = ControllerSimulator(server)

    sim.settle()

    rolled = apps.read_namespaced_deployment("web", NS)
    status = rolled.status
    assert status.observed_generation == rolled.metadata.generation
    counts = (status.replicas, status.updated_replicas, status.ready_replicas, status.available_replicas)
    assert counts == (3, 3, 3, 3)
    conditions = {c.type: (c.status, c.reason) for c in status.conditions}
    assert conditions == {
        "Available": ("True", "MinimumReplicasAvailable"),
        "Progressing": ("True", "NewReplicaSetAvailable"),
    }
    [replica_set] = apps.list_namespaced_replica_set(NS).items
    template_hash = replica_set.metadata.labels["pod-template-hash"]
    pods = core.list_namespaced_pod(NS, label_selector=f"pod-template-hash={template_hash}").items
    assert len(pods) == 3
    assert all(p.status.phase == "Running" and p.status.container_statuses[0].ready for p in pods)
    assert pods[0].status.container_statuses[0].image == "nginx:1.25"


def test_crashloop_injection_fails_only_the_new_revision(server, apps, core):
    apps.create_namespaced_deployment(NS, deployment(replicas=2))
    sim = ControllerSimulator(server)
    sim.settle()
    sim.fail("Deployment", NS, "web", "crashloop")

    patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:broken"}]}}}}
    apps.patch_namespaced_deployment("web", NS, patch)
    sim.settle()

    # maxSurge 25% of 2 rounds up to one extra pod; maxUnavailable rounds down to none, so the
    # old ReplicaSet keeps both of its ready pods while the new one crashes.
    status = apps.read_namespaced_deployment("web", NS).status
    assert (status.replicas, status.updated_replicas, status.ready_replicas) == (3, 1, 2)
    progressing = next(c for c in status.conditions if c.type == "Progressing")
    assert (progressing.status, progressing.reason) == ("True", "ReplicaSetUpdated")
    broken = [p for p in core.list_namespaced_pod(NS).items if p.spec.containers[0].image == "nginx:broken"]
    assert broken
    for pod in broken:
        container = pod.status.container_statuses[0]
        assert container.state.waiting.reason == "CrashLoopBackOff"
        assert container.restart_count > 0 and not container.ready
    events = core.list_namespaced_event(NS, field_selector=f"involvedObject.name={broken[0].metadata.name}")
    assert "BackOff" in {e.reason for e in events.items}


def test_image_failures_and_progress_deadline(server, apps, core):
    apps.create_namespaced_deployment(NS, deployment("api", image="registry.local/api:v2"))
    apps.create_namespaced_deployment(NS, deployment("worker", image="worker:v1"))
    sim = ControllerSimulator(server)
    sim.fail_image("registry.local/api", "imagepull")
    sim.fail("Deployment", NS, "worker", "progress-deadline")

    sim.settle()

    api_pod = core.list_namespaced_pod(NS, label_selector="app=api").items[0]
    assert api_pod.status.phase == "Pending"
    assert api_pod.status.container_statuses[0].state.waiting.reason == "ImagePullBackOff"
    progressing = [
        c for c in apps.read_namespaced_deployment("worker", NS).status.conditions if c.type == "Progressing"
    ]
    assert (progressing[0].status, progressing[0].reason) == ("False", "ProgressDeadlineExceeded")


def test_statefulset_and_job_progress(server, apps, api):
    labels = {"app": "db"}
    template = {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "db", "image": "postgres:16"}]},
    }
    apps.create_namespaced_stateful_set(
        NS,
        {
            "metadata": {"name": "db"},
            "spec": {
                "replicas": 2,
                "serviceName": "db",
                "selector": {"matchLabels": labels},
                "template": template,
            },
        },
    )
    job_template = {
        "spec": {"restartPolicy": "Never", "containers": [{"name": "migrate", "image": "migrate:1"}]}
    }
    client.BatchV1Api(api).create_namespaced_job(
        NS, {"metadata": {"name": "migrate"}, "spec": {"template": job_template}}
    )

    ControllerSimulator(server).settle()

    sts = apps.read_namespaced_stateful_set("db", NS).status
    assert (sts.ready_replicas, sts.current_revision) == (2, sts.update_revision)
    job = client.BatchV1Api(api).read_namespaced_job("migrate", NS).status
    assert job.succeeded == 1
    assert [(c.type, c.status) for c in job.conditions] == [("Complete", "True")]


def test_pod_log_honours_tail_lines_and_container(server, core):
    pod = {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "app", "image": "a:1"}, {"name": "sidecar", "image": "s:1"}]},
    }
    core.create_namespaced_pod(NS, pod)
    server.set_pod_log(NS, "p", "one\ntwo\nthree\n", container="app")
    server.set_pod_log(NS, "p", "proxy up\n", container="sidecar")

    def log(**options) -> str:
        # kubernetes 36 returns the repr of the bytes from read_namespaced_pod_log
        # (kubernetes-client/python#2596); reading the raw response avoids it.
        return core.read_namespaced_pod_log("p", NS, _preload_content=False, **options).data.decode()

    assert log(container="app", tail_lines=2) == "two\nthree\n"
    assert log(container="sidecar") == "proxy up\n"
    with pytest.raises(ApiException) as ambiguous:
        log()
    assert ambiguous.value.status == 400


def test_fault_injection_and_request_counts(server, core):
    server.reset_counters()
    server.fail_next(2, 503)

    codes = []
    for _ in range(3):
        try:
            core.list_namespaced_config_map(NS)
            codes.append(200)
        except ApiException as error:
            codes.append(error.status)
    assert codes == [503, 503, 200]
    assert server.counts["GET"] == 3
    method, path, query = server.requests[0]
    assert (method, path, query) == ("GET", f"/api/v1/namespaces/{NS}/configmaps", {})

    server.fail_next(1, 429, writes_only=True)
    core.list_namespaced_config_map(NS)  # reads pass
    with pytest.raises(ApiException) as throttled:
        core.create_namespaced_config_map(NS, config_map("x"))
    assert throttled.value.status == 429 and throttled.value.headers["Retry-After"] == "1"

    server.fail_next(1, 504, after_write=True)
    with pytest.raises(ApiException):
        core.create_namespaced_config_map(NS, config_map("landed"))
    assert server.read("v1", "ConfigMap", "landed", NS) is not None  # the write happened

    server.inject(lambda request: 500 if request.path.endswith("/secrets") else None)
    with pytest.raises(ApiException) as injected:
        core.list_namespaced_secret(NS)
    assert injected.value.status == 500
    server.clear_faults()

    def outcomes(seed):
        server.fail_ratio(0.5, codes=(500, 503), seed=seed)
        results = []
        for _ in range(20):
            try:
                core.list_namespaced_config_map(NS)
                results.append(200)
            except ApiException as error:
                results.append(error.status)
        server.clear_faults()
        return results

    first, second = outcomes(7), outcomes(7)
    assert first == second and {500, 503, 200} >= set(first) and len(set(first)) > 1
    server.reset_counters()
    assert server.requests == [] and server.counts == {}


def test_quantities_are_stored_canonically_and_claim_templates_defaulted(k8s_server):
    """As the real server (found on the real control plane, issue 18): `1000m` is stored as `1`,
    `1024Mi` as `1Gi`, and templates in the atomic volumeClaimTemplates list are defaulted."""
    from llm_cost_ops_ops.k8s.client import Kube

    kube = Kube(client.ApiClient(k8s_server.client_configuration()))
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "q"}})
    container = {"name": "c", "image": "i:1", "resources": {"limits": {"cpu": "1000m", "memory": "1024Mi"}}}
    kube.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "q"},
            "spec": {
                "selector": {"matchLabels": {"a": "b"}},
                "serviceName": "db",
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [container]}},
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data"},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": "10240Mi"}},
                        },
                    }
                ],
            },
        }
    )
    live = kube.get("apps/v1", "StatefulSet", "db", "q")
    assert live["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] == {
        "cpu": "1",
        "memory": "1Gi",
    }
    [template] = live["spec"]["volumeClaimTemplates"]
    assert template["spec"]["volumeMode"] == "Filesystem" and template["status"] == {"phase": "Pending"}
    assert template["spec"]["resources"]["requests"]["storage"] == "10Gi"
