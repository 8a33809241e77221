"""Policy rules on hand-made objects (llm_cost_ops_ops.bundles.policy), one behaviour at a time.

Cases:
- a compliant workload breaks no rule of RULES;
- run-as-non-root: the container setting overrides the pod's; uid 0 is refused even with
  runAsNonRoot;
- read-only-root-filesystem: the writable-root annotation exempts a workload;
- drop-all-capabilities: privileged or escalating containers fail even when dropping ALL;
- seccomp-runtime-default: a Localhost profile, or a profile on every container, is enough;
- requests-and-limits: init containers are held to it too, missing resources are listed;
- api-probes: no API workload at all is a finding; init containers need no probes;
- pinned-image-tag: digests pass, moving tags fail, environments with mutable tags are skipped;
- the API's disruption budget (found by role for the contract): an empty selector does not count;
- network flows (references): ingress from anywhere, an ipBlock or every pod to the database is
  refused; ingress to the API from anywhere is refused;
- no-placeholder-secrets: base64 data is decoded to tell placeholders from literal values, values
  never appear in the message, service-account tokens and dev are skipped;
- service-account-per-component: the default account is refused; an undeclared one is the
  references check's service-account finding;
- least-privilege-rbac: ClusterRoles, wildcards and bindings to built-in admin roles are refused;
- no-migration-init-container: a regular container (a migration Job) may run migrations;
- kustomize-warnings: one finding per warning line;
- Finding prints `-` for a finding about nothing in particular.
"""

from __future__ import annotations

import base64
import copy

import pytest

from llm_cost_ops_ops.bundles import policy
from llm_cost_ops_ops.bundles.access_refs import service_accounts_exist
from llm_cost_ops_ops.bundles.findings import Finding
from llm_cost_ops_ops.bundles.model import ManifestObject, RenderedBundle
from llm_cost_ops_ops.bundles.network_rules import platform_flows
from llm_cost_ops_ops.bundles.platform import WRITABLE_ROOT_ANNOTATION
from llm_cost_ops_ops.bundles.roles import RoleLookup

pytestmark = pytest.mark.unit

NS = "llm-cost-ops-staging"


def _container(name: str = "llm-cost-ops", **extra) -> dict:
    body = {
        "name": name,
        "image": "ghcr.io/llm-cost-ops/llm-cost-ops:1.4.2",
        "resources": {
            "requests": {"cpu": "100m", "memory": "64Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "startupProbe": {"httpGet": {"path": "/health", "port": 8080}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
        "livenessProbe": {"httpGet": {"path": "/live", "port": 8080}},
    }
    body.update(extra)
    return body


def _workload(
    name: str = "llm-cost-ops",
    app: str = "llm-cost-ops",
    component: str = "api",
    account: str = "llm-cost-ops",
    kind: str = "Deployment",
) -> dict:
    labels = {"app.kubernetes.io/name": app, "app.kubernetes.io/component": component}
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "serviceAccountName": account,
                    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [_container(name=app)],
                },
            },
        },
    }


def _obj(kind: str, name: str, api_version: str = "v1", **fields) -> dict:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": NS}, **fields}


def _network_baseline() -> list[dict]:
    nv = "networking.k8s.io/v1"
    return [
        _obj("NetworkPolicy", "deny", nv, spec={"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        _obj("NetworkPolicy", "dns", nv, spec={
            "podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": [{"port": 53}]}],
        }),
        _obj("NetworkPolicy", "api", nv, spec={
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "llm-cost-ops"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {
                "kubernetes.io/metadata.name": "ingress-nginx"}}}]}],
        }),
    ]  # fmt: skip


def _bundle(*bodies: dict, warnings: tuple[str, ...] = (), env: str = "staging") -> RenderedBundle:
    objects = [ManifestObject(copy.deepcopy(b), "manifests/x.yaml") for b in bodies]
    return RenderedBundle.from_objects(env, objects, warnings)


def _compliant() -> list[dict]:
    return [
        _obj("ServiceAccount", "llm-cost-ops"),
        _workload(),
        *_network_baseline(),
    ]


def _api_container(bodies: list[dict]) -> dict:
    return _api_pod(bodies)["containers"][0]


def _api_pod(bodies: list[dict]) -> dict:
    return bodies[1]["spec"]["template"]["spec"]


def _run(rule, bodies, spec, **kwargs) -> list[Finding]:
    return list(rule(_bundle(*bodies, **kwargs), spec))


@pytest.fixture
def staging(env_specs):
    return env_specs["staging"]


def test_compliant_workload_breaks_no_rule(staging):
    assert policy.check_policy(_bundle(*_compliant()), staging) == []


def test_container_run_as_non_root_false_overrides_the_pod(staging):
    bodies = _compliant()
    _api_container(bodies)["securityContext"]["runAsNonRoot"] = False
    [finding] = _run(policy.pod_runs_as_non_root, bodies, staging)
    assert finding.rule == "run-as-non-root"
    assert finding.field == "spec.template.spec.securityContext.runAsNonRoot"


def test_uid_zero_is_refused_even_with_run_as_non_root(staging):
    bodies = _compliant()
    _api_container(bodies)["securityContext"]["runAsUser"] = 0
    [finding] = _run(policy.pod_runs_as_non_root, bodies, staging)
    assert finding.field == "spec.template.spec.containers[0].securityContext.runAsUser"
    assert "runs as uid 0" in finding.message


def test_writable_root_annotation_exempts_the_workload(staging):
    bodies = _compliant()
    _api_container(bodies)["securityContext"]["readOnlyRootFilesystem"] = False
    assert len(_run(policy.containers_read_only_root, bodies, staging)) == 1
    bodies[1]["metadata"]["annotations"] = {WRITABLE_ROOT_ANNOTATION: "the vendor image writes to /var/lib"}
    assert _run(policy.containers_read_only_root, bodies, staging) == []


@pytest.mark.parametrize("change", [{"privileged": True}, {"allowPrivilegeEscalation": True}])
def test_privileged_or_escalating_fails_even_when_dropping_all(staging, change):
    bodies = _compliant()
    _api_container(bodies)["securityContext"].update(change)
    [finding] = _run(policy.containers_drop_all_capabilities, bodies, staging)
    assert finding.field == "spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation"


def test_seccomp_localhost_or_per_container_profile_is_enough(staging):
    bodies = _compliant()
    pod = _api_pod(bodies)
    pod["securityContext"]["seccompProfile"] = {"type": "Localhost", "localhostProfile": "p.json"}
    assert _run(policy.pods_use_runtime_default_seccomp, bodies, staging) == []
    del pod["securityContext"]["seccompProfile"]
    assert len(_run(policy.pods_use_runtime_default_seccomp, bodies, staging)) == 1
    pod["containers"][0]["securityContext"]["seccompProfile"] = {"type": "RuntimeDefault"}
    assert _run(policy.pods_use_runtime_default_seccomp, bodies, staging) == []


def test_init_containers_need_requests_and_limits(staging):
    bodies = _compliant()
    init = _container(name="wait-for-db", resources={"requests": {"cpu": "10m"}})
    _api_pod(bodies)["initContainers"] = [init]
    findings = _run(policy.containers_have_requests_and_limits, bodies, staging)
    init_path = "spec.template.spec.initContainers[0]"
    assert [(f.field, f.message) for f in findings] == [
        (f"{init_path}.resources.requests", "container wait-for-db has no requests for memory"),
        (f"{init_path}.resources.limits", "container wait-for-db has no limits for cpu, memory"),
    ]


def test_no_api_workload_is_a_probe_finding(staging):
    database = _workload(name="postgres", app="postgres", component="database")
    database["spec"]["template"]["spec"]["containers"][0]["image"] = "postgres:16.6-alpine"
    [finding] = _run(policy.api_has_probes, [database], staging)
    assert finding.object_ref == "-"
    assert "found no Deployment playing the api role" in finding.message
    assert "app.kubernetes.io/name=llm-cost-ops, or running the llm-cost-ops image" in finding.message


def test_api_found_by_image_needs_probes_whatever_its_labels(staging):
    api = _workload(name="cost-api", app="cost-api", component="backend")
    [container] = api["spec"]["template"]["spec"]["containers"]
    container.pop("readinessProbe", None)
    findings = _run(policy.api_has_probes, [api], staging)
    assert [(f.object_ref, f.field) for f in findings] == [
        (f"Deployment/{NS}/cost-api", "spec.template.spec.containers[0].readinessProbe")
    ]


def test_api_init_containers_need_no_probes(staging):
    bodies = _compliant()
    init = _container(name="wait")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        del init[probe]
    _api_pod(bodies)["initContainers"] = [init]
    assert _run(policy.api_has_probes, bodies, staging) == []


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("ghcr.io/llm-cost-ops/llm-cost-ops@sha256:" + "a" * 64, True),
        ("ghcr.io/llm-cost-ops/llm-cost-ops:1.4.2", True),
        ("ghcr.io/llm-cost-ops/llm-cost-ops:main", False),
        ("ghcr.io/llm-cost-ops/llm-cost-ops", False),
    ],
)
def test_pinned_image_tags(staging, image, pinned):
    bodies = _compliant()
    _api_container(bodies)["image"] = image
    findings = _run(policy.images_are_pinned, bodies, staging)
    assert (findings == []) is pinned


def test_mutable_tags_are_allowed_where_the_environment_says_so(env_specs):
    bodies = _compliant()
    _api_container(bodies)["image"] = "ghcr.io/llm-cost-ops/llm-cost-ops:latest"
    assert _run(policy.images_are_pinned, bodies, env_specs["dev"], env="dev") == []
    assert len(_run(policy.images_are_pinned, bodies, env_specs["prod"], env="prod")) == 1


def test_pdb_with_empty_selector_does_not_protect_the_api(env_specs):
    # The contract finds the API's budget by role: an empty selector plays no role.
    pdb = _obj("PodDisruptionBudget", "everything", "policy/v1", spec={"minAvailable": 3, "selector": {}})
    lookup = RoleLookup(_bundle(*_compliant(), pdb, env="prod"), env_specs["prod"])
    assert lookup.find("disruption-budget").obj is None
    pdb["spec"]["selector"] = {"matchLabels": {"app.kubernetes.io/name": "llm-cost-ops"}}
    lookup = RoleLookup(_bundle(*_compliant(), pdb, env="prod"), env_specs["prod"])
    assert lookup.find("disruption-budget").obj.name == "everything"


def _database_policy(peers: list[dict] | None) -> dict:
    rule = {} if peers is None else {"from": peers}
    return _obj("NetworkPolicy", "postgres", "networking.k8s.io/v1", spec={
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "postgres"}},
        "policyTypes": ["Ingress"],
        "ingress": [rule],
    })  # fmt: skip


@pytest.mark.parametrize(
    ("peers", "broken"),
    [
        ([{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "llm-cost-ops"}}}], False),
        (
            [
                {
                    "namespaceSelector": {},
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
                }
            ],
            False,
        ),
        (None, True),
        ([{"ipBlock": {"cidr": "10.0.0.0/8"}}], True),
        ([{"podSelector": {}}], True),
    ],
    ids=["api", "scraper", "from-anywhere", "ip-block", "every-pod"],
)
def test_database_ingress_only_from_api_and_scraper(staging, peers, broken):
    # Judged on the reachability matrix (references/network-flows), on the database's own side.
    bodies = [
        *_compliant(),
        _workload(name="postgres", app="postgres", component="database", kind="StatefulSet"),
        _database_policy(peers),
    ]
    findings = [f for f in _run(platform_flows, bodies, staging) if "PostgreSQL port" in f.message]
    assert bool(findings) is broken
    assert all(f.object_ref == f"StatefulSet/{NS}/postgres" for f in findings)


def test_api_ingress_from_anywhere_is_refused(staging):
    bodies = _compliant()
    bodies[4]["spec"]["ingress"].append({})  # a rule with no `from`: every pod and address
    findings = _run(platform_flows, bodies, staging)
    assert any("only the ingress controller and the scraper may" in f.message for f in findings)
    assert all(f.rule == "network-flows" for f in findings)


def _secret(data: dict, kind: str = "Opaque") -> dict:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return _obj("Secret", "creds", type=kind, data=encoded)


def test_secret_data_is_decoded_and_never_shown(staging):
    secret = _secret({"token": "ChangeMe-please", "key": "s3cr3t-value"})
    findings = _run(policy.no_placeholder_secrets, [secret], staging)
    assert {f.field: f.message for f in findings} == {
        "data.token": "staging bundle ships a placeholder value; provide this Secret from outside the bundle",
        "data.key": "staging bundle ships a literal value; provide this Secret from outside the bundle",
    }
    assert not any("s3cr3t" in str(f) or "ChangeMe" in str(f) for f in findings)


def test_service_account_tokens_and_dev_secrets_are_allowed(env_specs):
    token = _secret({"token": "x"}, kind="kubernetes.io/service-account-token")
    assert _run(policy.no_placeholder_secrets, [token], env_specs["prod"], env="prod") == []
    placeholder = _secret({"password": "changeme"})
    assert _run(policy.no_placeholder_secrets, [placeholder], env_specs["dev"], env="dev") == []


def test_default_account_is_refused_and_undeclared_is_a_reference(staging):
    bodies = [_obj("ServiceAccount", "default"), _workload(account="default")]
    [finding] = _run(policy.service_account_per_component, bodies, staging)
    assert finding.field == "spec.template.spec.serviceAccountName"
    assert "default service account" in finding.message
    ghost = [_workload(account="llm-cost-ops-ghost")]
    assert _run(policy.service_account_per_component, ghost, staging) == []
    [missing] = _run(service_accounts_exist, ghost, staging)
    assert (missing.check, missing.rule) == ("references", "service-account")


def test_workloads_of_one_component_may_share_an_account(staging):
    bodies = [
        _obj("ServiceAccount", "monitoring"),
        _workload(name="prometheus", app="prometheus", component="monitoring", account="monitoring"),
        _workload(name="grafana", app="grafana", component="monitoring", account="monitoring"),
    ]
    assert _run(policy.service_account_per_component, bodies, staging) == []


def test_cluster_roles_and_admin_bindings_are_refused(staging):
    rbac = "rbac.authorization.k8s.io/v1"
    bodies = [
        {"apiVersion": rbac, "kind": "ClusterRole", "metadata": {"name": "reader"},
         "rules": [{"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}]},
        _obj("RoleBinding", "admins", rbac, roleRef={"kind": "ClusterRole", "name": "admin"}),
    ]  # fmt: skip
    findings = _run(policy.rbac_is_least_privilege, bodies, staging)
    assert [(f.object_ref, f.field) for f in findings] == [
        ("ClusterRole/reader", "kind"),
        ("ClusterRole/reader", "rules[0].resources"),
        (f"RoleBinding/{NS}/admins", "roleRef.name"),
    ]


def test_migrations_may_run_in_a_regular_container(staging):
    migrate = _container(name="migrate", command=["sqlx", "migrate", "run"])
    job = _obj("Job", "migrate", "batch/v1", spec={"template": {"spec": {"containers": [migrate]}}})
    assert _run(policy.no_migrations_in_init_containers, [job], staging) == []
    job["spec"]["template"]["spec"]["initContainers"] = job["spec"]["template"]["spec"].pop("containers")
    [finding] = _run(policy.no_migrations_in_init_containers, [job], staging)
    assert finding.field == "spec.template.spec.initContainers[0].command"


def test_one_finding_per_kustomize_warning(staging):
    warnings = (
        "manifests/overlays/staging/kustomization.yaml: 'bases' is deprecated.",
        "manifests/overlays/staging/kustomization.yaml: 'vars' is deprecated.",
    )
    findings = _run(policy.kustomize_without_warnings, _compliant(), staging, warnings=warnings)
    assert [f.message for f in findings] == [
        "kustomize warned: 'bases' is deprecated.",
        "kustomize warned: 'vars' is deprecated.",
    ]
    assert {f.field for f in findings} == {"manifests/overlays/staging/kustomization.yaml"}


def test_finding_without_object_prints_a_dash():
    finding = Finding.of("policy", "network-policies", "prod", None, "", "no default-deny NetworkPolicy")
    assert str(finding) == "[prod] -: no default-deny NetworkPolicy (rule policy/network-policies)"
