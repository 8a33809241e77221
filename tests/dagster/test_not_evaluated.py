"""Issue 11: a check that did not run is not a pass. Each case runs the real check or job in
process and reads the evaluation Dagster recorded.

Cases:
- drift with no cluster configured at all: passed false, WARN, `evaluated: false`, the reason in
  the description and a warning in the run's log; never passed;
- drift against a cluster (the API-server double) where the environment was never deployed (no
  healthy release): not evaluated the same way;
- drift self-heal does not heal a drift check that was not evaluated;
- smoke checks with no cluster to find the endpoints: every check not evaluated (status
  `not evaluated`, `evaluated: false`, ERROR: the release is not proven healthy), none passed.
"""

from __future__ import annotations

import logging

import dagster as dg
import pytest

from llm_cost_ops_ops.defs.drift import drift_definitions
from llm_cost_ops_ops.defs.kubernetes import KubernetesResource
from llm_cost_ops_ops.defs.notify import NotifierResource
from llm_cost_ops_ops.defs.sensors import self_heal_sensor
from llm_cost_ops_ops.defs.smoke import SmokeResource, smoke_definitions

pytestmark = pytest.mark.dagster


@pytest.fixture
def instance(tmp_path):
    with dg.DagsterInstance.ephemeral(tempdir=str(tmp_path / "dagster_home")) as instance:
        yield instance


@pytest.fixture
def no_cluster(monkeypatch, tmp_path) -> KubernetesResource:
    for name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return KubernetesResource()


def _drift(spec, kubernetes, instance) -> tuple[dg.ExecuteInProcessResult, dg.AssetCheckEvaluation]:
    defs = dg.Definitions.merge(drift_definitions(spec), dg.Definitions(resources={"kubernetes": kubernetes}))
    result = defs.resolve_job_def(f"drift_check_{spec.name}").execute_in_process(
        instance=instance, raise_on_error=False
    )
    [evaluation] = result.get_asset_check_evaluations()
    return result, evaluation


def _assert_not_evaluated(evaluation: dg.AssetCheckEvaluation, reason: str) -> None:
    assert evaluation.passed is False
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["evaluated"].value is False
    assert evaluation.description.startswith("not evaluated: ")
    assert reason in evaluation.description


def test_drift_without_a_cluster_is_not_evaluated(env_specs, no_cluster, instance):
    result, evaluation = _drift(env_specs["prod"], no_cluster, instance)

    _assert_not_evaluated(evaluation, "prod: no cluster configured")
    warnings = [e.user_message for e in instance.all_logs(result.run_id) if e.level == logging.WARNING]
    assert any("drift not evaluated: prod: no cluster configured" in w for w in warnings)


def test_drift_of_an_environment_never_deployed_is_not_evaluated(env_specs, k8s_kubeconfig, instance):
    kubernetes = KubernetesResource(kubeconfig=str(k8s_kubeconfig), backoff_initial_seconds=0.0)

    _, evaluation = _drift(env_specs["prod"], kubernetes, instance)

    _assert_not_evaluated(evaluation, "prod has no healthy release in its ledger")


def test_self_heal_does_not_heal_a_drift_check_not_evaluated(env_specs, no_cluster, instance):
    spec = env_specs["staging"]
    _, evaluation = _drift(spec, no_cluster, instance)
    assert not evaluation.passed
    sensor = self_heal_sensor(spec)

    with dg.build_sensor_context(instance=instance, resources={"notifier": NotifierResource()}) as context:
        outcome = sensor(context)

    assert outcome.skip_message == "staging: the latest drift check was not evaluated; nothing to heal"


def test_smoke_checks_without_a_cluster_are_not_evaluated(env_specs, no_cluster, instance):
    spec = env_specs["staging"]
    defs = dg.Definitions.merge(
        smoke_definitions(spec),
        dg.Definitions(resources={"kubernetes": no_cluster, "smoke": SmokeResource(location="outside")}),
    )

    result = defs.resolve_job_def("smoke_test_staging").execute_in_process(
        instance=instance, raise_on_error=False
    )

    evaluations = result.get_asset_check_evaluations()
    assert evaluations
    for evaluation in evaluations:
        assert evaluation.passed is False, evaluation.check_name
        assert evaluation.metadata["evaluated"].value is False
        assert evaluation.metadata["status"].value == "not evaluated"
        assert evaluation.description.startswith(f"not evaluated: {evaluation.check_name} could not run: ")
