"""The <env>_deployed assets and the deploy and rollback jobs, run in process
(llm_cost_ops_ops.defs.deploy) with the real resources pointed at the API-server double, whose
controller simulator runs in the background.

Cases:
- deploy_dev in apply mode (its migration wave against a fresh PostgreSQL database, recording
  dev_schema) materializes dev_deployed with the release's revision, operation, digest
  (the digest dev_manifests recorded), images, outcome counts, writes, seconds per wave and a markdown
  table of every object; the API Deployment runs healthy in the double; a plan run afterwards observes
  a diff against that release (everything `same`) without a single request to the double;
- plan mode, asked for (mode plan), emits an AssetObservation with the plan (changes, waves,
  table), does not materialize dev_deployed and sends no HTTP request to the double;
- issue 11, nothing green that did not happen: the shipped staging and prod run configs with a
  typo in KUBECONFIG, no kubeconfig at all, a deploy.kube_context the kubeconfig lacks, or the
  resource disabled fail the deploy step with one line naming the kubeconfig or context and what
  to set; nothing is planned, nothing materialized, no request reaches the double;
- issue 11, the deploy applies its own run's bundle: a concurrent render whose contract check
  failed, finished between this run's checks and its deploy step, is not what this run applies;
  a re-execution of only the deploy step of a run whose checks failed is refused;
- a blocking check failure (a dev overlay breaking the contract, in a copy of the project) stops the
  deploy: dev_deployed does not run and no request reaches the double;
- rollback_dev after two deploys with different images materializes dev_deployed with operation
  rollback, rollback_of the first revision and the first image running again;
- an environment's deploy.history caps its ledger;
- deploy_prod is blocked by the promotion gate while staging has not run prod's app image (the step
  fails with PromotionBlocked, no write reaches the double), and passes once deploy_staging has run it
  (in a copy whose staging and prod migration waves are off: their Jobs poll every 2 s).
"""

from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path

import dagster as dg
import pytest

from llm_cost_ops_ops import definitions
from llm_cost_ops_ops.config_yaml import read_yaml
from llm_cost_ops_ops.defs.bundles import CHECKS, bundle_definitions
from llm_cost_ops_ops.defs.deploy import deploy_definitions
from llm_cost_ops_ops.defs.kubernetes import KubernetesResource
from llm_cost_ops_ops.defs.resources import (
    BundleIOManager,
    BundleNotChecked,
    PlatformManifests,
    rendered_in_run,
)
from llm_cost_ops_ops.environments import load_environments
from llm_cost_ops_ops.k8s.health import deployment_health
from llm_cost_ops_ops.k8s.ledger import ReleaseLedger
from llm_cost_ops_ops.k8s.waves import WAVES
from tests.k8s_double import ApiServer

pytestmark = pytest.mark.dagster

DEV = "llm-cost-ops-dev"
DEV_DSN = "LLM_COST_OPS_OPS_DEV_DATABASE_URL"
FAST = {"poll_seconds": 0.02, "rollout_deadline_seconds": 10}


def _apply(env: str = "dev", **config) -> dict:
    return {"ops": {f"{env}_deployed": {"config": {"mode": "apply", **FAST, **config}}}}


def _definitions(
    root: Path, kubernetes: KubernetesResource, io_manager: BundleIOManager | None = None
) -> dg.Definitions:
    """The bundle and deploy definitions of `root`'s environments, with the code location's
    resources but the manifests of `root` and the given Kubernetes resource."""
    specs = load_environments(root / "environments.yaml")
    return dg.Definitions.merge(
        *(bundle_definitions(spec) for spec in specs.values()),
        *(deploy_definitions(spec, specs) for spec in specs.values()),
        dg.Definitions(
            executor=dg.in_process_executor,
            resources={
                **definitions.defs.resources,
                "manifests": PlatformManifests(project_dir=str(root)),
                "bundle_io_manager": io_manager or BundleIOManager(),
                "kubernetes": kubernetes,
            },
        ),
    )


@pytest.fixture
def project_copy(tmp_path, project_root) -> Path:
    root = tmp_path / "project"
    shutil.copytree(project_root / "manifests", root / "manifests")
    shutil.copy(project_root / "environments.yaml", root / "environments.yaml")
    return root


@pytest.fixture
def dev_database(pg_database, monkeypatch) -> str:
    """dev's migration wave runs directly against this fresh database."""
    monkeypatch.setenv(DEV_DSN, pg_database)
    return pg_database


def _migrations_off(root: Path, *environments: str) -> None:
    """Turn the migration wave off for `environments` in the copy's environments.yaml (their
    job-mode migrations poll a Job every 2 s; the promotion gate is what is tested here)."""
    path = root / "environments.yaml"
    text = path.read_text()
    for env in environments:
        text, count = re.subn(
            rf"(\n  {env}:\n(?:    .*\n)*?    migrations:\n      mode:) \w+", r'\1 "off"', text
        )
        assert count == 1, env
    path.write_text(text)


@pytest.fixture
def instance(tmp_path):
    with dg.DagsterInstance.ephemeral(tempdir=str(tmp_path / "dagster_home")) as instance:
        yield instance


@pytest.fixture
def cluster(k8s_server: ApiServer, k8s_controllers, k8s_kubeconfig) -> KubernetesResource:
    """The Kubernetes resource pointed at the double, its controllers running."""
    k8s_controllers.run_in_background(0.01)
    return KubernetesResource(kubeconfig=str(k8s_kubeconfig), backoff_initial_seconds=0.0)


def _run(defs: dg.Definitions, job: str, instance, run_config: dict | None = None):
    return defs.resolve_job_def(job).execute_in_process(
        instance=instance, run_config=run_config or {}, raise_on_error=False
    )


def _materialized(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetMaterialization]:
    return {
        e.materialization.asset_key.to_user_string(): e.materialization
        for e in result.get_asset_materialization_events()
    }


def _observations(result: dg.ExecuteInProcessResult) -> list[dg.AssetObservation]:
    return [
        e.event_specific_data.asset_observation
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_OBSERVATION
    ]


def _meta(materialization) -> dict:
    return {k: v.value for k, v in materialization.metadata.items()}


def _live_image(server: ApiServer, namespace: str = DEV) -> str:
    live = server.read("apps/v1", "Deployment", "llm-cost-ops", namespace)
    return live["spec"]["template"]["spec"]["containers"][0]["image"]


def _set_dev_tag(root: Path, tag: str) -> None:
    overlay = root / "manifests" / "overlays" / "dev" / "kustomization.yaml"
    text = overlay.read_text()
    assert "    newName: ghcr.io/llm-cost-ops/llm-cost-ops\n    newTag: " in text
    before, _, rest = text.partition("    newName: ghcr.io/llm-cost-ops/llm-cost-ops\n    newTag: ")
    overlay.write_text(
        f"{before}    newName: ghcr.io/llm-cost-ops/llm-cost-ops\n    newTag: {tag}\n"
        + (rest.partition("\n")[2])
    )


def test_deploy_dev_materializes_the_release(project_root, cluster, k8s_server, instance, dev_database):
    defs = _definitions(project_root, cluster)

    result = _run(defs, "deploy_dev", instance, _apply())

    assert result.success
    materialized = _materialized(result)
    assert set(materialized) == {"dev_manifests", "dev_schema", "dev_deployed"}
    deployed = _meta(materialized["dev_deployed"])
    bundle = _meta(materialized["dev_manifests"])
    assert (deployed["revision"], deployed["operation"]) == (1, "deploy")
    assert deployed["digest"] == bundle["digest"]
    assert deployed["images"] == bundle["images"]
    assert "ghcr.io/llm-cost-ops/llm-cost-ops:latest" in deployed["images"]
    assert deployed["outcomes"] == {"created": bundle["object_count"] - 1, "skipped": 1}
    assert deployed["writes"] == bundle["object_count"] - 1
    # Every wave, in order (tests/unit/test_health.py pins that order), then prune.
    assert list(deployed["wave_seconds"]) == [w.name for w in WAVES] + ["prune"]
    assert deployed["wave_seconds"]["database"] > 0
    table = deployed["objects"]
    assert "| api | Deployment/llm-cost-ops-dev/llm-cost-ops | created |" in table
    assert (
        "| monitoring | ServiceMonitor/llm-cost-ops-dev/llm-cost-ops | skipped | CRD not installed |" in table
    )
    assert len(deployed["warnings"]) == 1
    live = k8s_server.read("apps/v1", "Deployment", "llm-cost-ops", DEV)
    assert deployment_health(live).state == "healthy"

    k8s_server.reset_counters()
    planned = _run(defs, "deploy_dev", instance, {"ops": {"dev_deployed": {"config": {"mode": "plan"}}}})

    assert planned.success
    assert k8s_server.requests == []
    assert "dev_deployed" not in _materialized(planned)
    [observation] = _observations(planned)
    plan = _meta(observation)
    assert plan["previous_digest"] == deployed["digest"]
    assert plan["changes"] == {"add": 0, "change": 0, "same": bundle["object_count"], "remove": 0}


def test_plan_mode_observes_and_calls_no_cluster(project_root, k8s_server, instance, tmp_path, monkeypatch):
    # No cluster anywhere: `make run`'s plan needs none.
    for name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    defs = _definitions(project_root, KubernetesResource())

    result = _run(defs, "deploy_dev", instance, read_yaml(project_root / "jobs/deploy/dev.plan.yaml"))

    assert result.success
    assert k8s_server.requests == []
    assert set(_materialized(result)) == {"dev_manifests"}
    [observation] = _observations(result)
    assert observation.asset_key == dg.AssetKey("dev_deployed")
    plan = _meta(observation)
    objects = _meta(_materialized(result)["dev_manifests"])["object_count"]
    assert plan["mode"] == "plan"
    assert plan["previous_digest"] == "none"
    assert plan["changes"] == {"add": objects, "change": 0, "same": 0, "remove": 0}
    assert plan["waves"][0] == "namespace"
    assert "| database | StatefulSet/llm-cost-ops-dev/postgres | add |" in plan["plan"]


def _kube_context(root: Path, env: str, context: str) -> None:
    path = root / "environments.yaml"
    text, count = re.subn(
        rf"(\n  {env}:\n(?:    .*\n)*?    deploy:\n)", rf"\1      kube_context: {context}\n", path.read_text()
    )
    assert count == 1, env
    path.write_text(text)


@pytest.mark.parametrize(
    ("env", "setup", "expected"),
    [
        (
            "staging",
            "typo-in-KUBECONFIG",
            r"kubeconfig \S+/kubeconfg \(KUBECONFIG\) does not exist: set KUBECONFIG",
        ),
        (
            "prod",
            "typo-in-KUBECONFIG",
            r"kubeconfig \S+/kubeconfg \(KUBECONFIG\) does not exist: set KUBECONFIG",
        ),
        (
            "staging",
            "no-kubeconfig",
            r"kubeconfig \S+/\.kube/config \(the default, KUBECONFIG unset\) does not exist",
        ),
        (
            "staging",
            "unknown-context",
            r"has no context 'staging-cluster' \(it has double, other\): set deploy\.kube_context",
        ),
        ("staging", "resource-disabled", r"the kubernetes resource is disabled \(enabled: false\)"),
    ],
)
def test_a_deploy_that_cannot_reach_its_cluster_fails(
    project_root,
    project_copy,
    k8s_server,
    k8s_kubeconfig,
    instance,
    tmp_path,
    monkeypatch,
    env,
    setup,
    expected,
):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KUBECONFIG", str(k8s_kubeconfig))
    kubernetes = KubernetesResource(enabled=setup != "resource-disabled")
    if setup == "typo-in-KUBECONFIG":
        monkeypatch.setenv("KUBECONFIG", str(k8s_kubeconfig.parent / "kubeconfg"))
    elif setup == "no-kubeconfig":
        monkeypatch.delenv("KUBECONFIG")
    elif setup == "unknown-context":
        _kube_context(project_copy, env, "staging-cluster")
    defs = _definitions(project_copy, kubernetes)

    result = _run(defs, f"deploy_{env}", instance, read_yaml(project_root / f"jobs/deploy/{env}.yaml"))

    assert not result.success
    [failure] = [e for e in result.get_step_failure_events() if e.step_key == f"{env}_deployed"]
    error = failure.step_failure_data.error.cause
    assert error.cls_name == "NotConfigured"
    line = error.message.strip().removeprefix("llm_cost_ops_ops.k8s.errors.NotConfigured: ")
    assert "\n" not in line
    assert re.search(rf"^{env}: cannot reach its cluster: .*{expected}", line), line
    assert "Invalid kube-config file" not in line
    assert _observations(result) == []  # nothing planned in its place
    assert set(_materialized(result)) == {f"{env}_manifests"}
    assert k8s_server.requests == []


class _InterleavingIOManager(BundleIOManager):
    """The real bundle IO manager; before the deploy step loads its bundle, another run (`between`)
    renders and checks the dev overlay to completion on the same instance."""

    def load_input(self, context):
        if "_manifests" not in context.step_context.step.key:  # the bundle's own checks
            worker = threading.Thread(target=BETWEEN.pop())
            worker.start()
            worker.join()
        return super().load_input(context)


BETWEEN: list = []


def test_the_deploy_applies_the_bundle_its_run_rendered(
    project_root, project_copy, cluster, k8s_server, instance, dev_database
):
    broken = project_copy / "manifests" / "overlays" / "dev" / "kustomization.yaml"
    broken.write_text(
        broken.read_text().replace(
            "  - name: llm-cost-ops\n    count: 1", "  - name: llm-cost-ops\n    count: 2"
        )
    )
    concurrent = _definitions(project_copy, cluster)
    rendered_between: list = []
    BETWEEN.append(lambda: rendered_between.append(_run(concurrent, "deploy_dev", instance, _apply())))
    defs = _definitions(project_root, cluster, _InterleavingIOManager())

    result = _run(defs, "deploy_dev", instance, _apply())

    [between] = rendered_between
    assert [e.check_name for e in between.get_asset_check_evaluations() if not e.passed] == ["contract"]
    latest = instance.get_latest_materialization_event(dg.AssetKey("dev_manifests"))
    assert latest.run_id == between.run_id  # the concurrent render is the latest materialization
    assert result.success
    ours = _meta(_materialized(result)["dev_manifests"])["digest"]
    assert _meta(_materialized(result)["dev_deployed"])["digest"] == ours
    assert ours != latest.asset_materialization.metadata["digest"].value
    live = k8s_server.read("apps/v1", "Deployment", "llm-cost-ops", DEV)
    assert live["spec"]["replicas"] == 1

    # The run whose contract check failed never yields a deployable bundle, re-executed or not.
    with pytest.raises(
        BundleNotChecked,
        match=rf"^dev_manifests sha256:\w+ of run {between.run_id} is not deployable: contract failed$",
    ):
        rendered_in_run(instance, dg.AssetKey("dev_manifests"), between.run_id, CHECKS)


def test_blocking_check_failure_stops_the_deploy(project_copy, cluster, k8s_server, instance):
    overlay = project_copy / "manifests" / "overlays" / "dev" / "kustomization.yaml"
    text = overlay.read_text()
    assert "  - name: llm-cost-ops\n    count: 1" in text
    overlay.write_text(
        text.replace("  - name: llm-cost-ops\n    count: 1", "  - name: llm-cost-ops\n    count: 2")
    )
    defs = _definitions(project_copy, cluster)

    result = _run(defs, "deploy_dev", instance, _apply())

    assert not result.success
    failed = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
    assert failed == ["contract"]
    assert "dev_deployed" not in _materialized(result)
    assert not any(e.step_key == "dev_deployed" for e in result.get_step_success_events())
    assert k8s_server.requests == []
    assert k8s_server.objects("apps/v1", "Deployment", DEV) == []


def test_rollback_dev_after_two_deploys(project_copy, cluster, k8s_server, instance, dev_database):
    defs = _definitions(project_copy, cluster)
    assert _run(defs, "deploy_dev", instance, _apply()).success
    _set_dev_tag(project_copy, "1.5.0")
    assert _run(defs, "deploy_dev", instance, _apply()).success
    assert _live_image(k8s_server) == "ghcr.io/llm-cost-ops/llm-cost-ops:1.5.0"

    result = _run(defs, "rollback_dev", instance, {"ops": {"rollback_release_dev": {"config": FAST}}})

    # The job may go on to smoke-test the environment, which the double does not serve: only the
    # rollback step is judged here.
    assert [e.step_key for e in result.get_step_success_events()][:1] == ["rollback_release_dev"]
    deployed = _meta(_materialized(result)["dev_deployed"])
    assert (deployed["revision"], deployed["operation"], deployed["rollback_of"]) == (3, "rollback", 1)
    assert "ghcr.io/llm-cost-ops/llm-cost-ops:latest" in deployed["images"]
    assert deployed["outcomes"]["configured"] == 1
    assert _live_image(k8s_server) == "ghcr.io/llm-cost-ops/llm-cost-ops:latest"
    latest = instance.get_latest_materialization_event(dg.AssetKey("dev_deployed"))
    assert latest.asset_materialization.metadata["operation"].value == "rollback"


def test_environment_history_caps_the_ledger(project_copy, cluster, k8s_server, instance, dev_database):
    environments = project_copy / "environments.yaml"
    text = environments.read_text()
    dev_deadline = "      database_deadline_seconds: 300\n"
    assert text.count(dev_deadline) == 1
    environments.write_text(text.replace(dev_deadline, dev_deadline + "      history: 1\n"))
    defs = _definitions(project_copy, cluster)
    assert _run(defs, "deploy_dev", instance, _apply()).success
    _set_dev_tag(project_copy, "1.5.0")
    assert _run(defs, "deploy_dev", instance, _apply()).success

    ledger = ReleaseLedger(cluster.connect(), "dev", DEV)

    assert [r.revision for r in ledger.releases()] == [2]


def test_prod_deploy_is_gated_on_staging(project_copy, cluster, k8s_server, instance):
    _migrations_off(project_copy, "staging", "prod")
    defs = _definitions(project_copy, cluster)

    blocked = _run(defs, "deploy_prod", instance, _apply("prod"))

    assert not blocked.success
    [failure] = [e for e in blocked.get_step_failure_events() if e.step_key == "prod_deployed"]
    cause = failure.step_failure_data.error.cause
    assert cause.cls_name == "PromotionBlocked"
    assert "staging has no release" in cause.message
    assert "ghcr.io/llm-cost-ops/llm-cost-ops:1.4.2" in cause.message
    assert "prod_deployed" not in _materialized(blocked)
    assert [r for r in k8s_server.requests if r.is_write] == []

    # Staging deployed without any blocking check evaluated: not proven healthy, still blocked.
    assert _run(defs, "deploy_staging", instance, _apply("staging")).success
    unproven = _run(defs, "deploy_prod", instance, _apply("prod"))
    assert not unproven.success
    assert "no blocking check of that release was evaluated" in _failure_message(unproven, "prod_deployed")

    passed = _run(_with_smoke_check(defs, True), "deploy_staging", instance, _apply("staging"))
    assert passed.success
    promoted = _run(defs, "deploy_prod", instance, _apply("prod"))

    assert promoted.success
    assert _meta(_materialized(promoted)["prod_deployed"])["revision"] == 1


def test_a_staging_release_whose_smoke_checks_failed_does_not_promote(project_copy, cluster, instance):
    _migrations_off(project_copy, "staging", "prod")
    defs = _definitions(project_copy, cluster)
    failed = _run(_with_smoke_check(defs, False), "deploy_staging", instance, _apply("staging"))
    assert not failed.success  # the blocking smoke check failed after a healthy rollout

    blocked = _run(defs, "deploy_prod", instance, _apply("prod"))

    assert not blocked.success
    message = _failure_message(blocked, "prod_deployed")
    assert "promotion gate: staging r1" in message
    assert "its blocking checks failed: staging_deployed:health" in message


def _with_smoke_check(defs: dg.Definitions, passes: bool) -> dg.Definitions:
    """`defs` with a blocking `health` check on staging_deployed that passes or fails."""

    @dg.asset_check(asset=dg.AssetKey("staging_deployed"), name="health", blocking=True)
    def health() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=passes)

    return dg.Definitions.merge(defs, dg.Definitions(asset_checks=[health]))


def _failure_message(result, step: str) -> str:
    [failure] = [e for e in result.get_step_failure_events() if e.step_key == step]
    error = failure.step_failure_data.error.cause
    return (error.cause.message if error.cause else "") + error.message
