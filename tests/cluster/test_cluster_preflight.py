"""Config errors surface before writes (issue 16), on the real control plane.

Cases:
- deploy_dev (direct-mode migrations) without LLM_COST_OPS_OPS_DEV_DATABASE_URL fails naming the
  variable, with no write at all in the API server's audit log: no namespace, no StatefulSet, no
  failed release (the same preflight refuses a `refuse` backup gate without a fresh backup, and
  a gate that would take a backup without its DSN: defs/preflight.py).
"""

from __future__ import annotations

import dagster as dg
import pytest

from llm_cost_ops_ops.definitions import defs
from llm_cost_ops_ops.defs.kubernetes import KubernetesResource

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]


def test_a_missing_dsn_fails_before_any_write(control_plane, cluster_kubeconfig, monkeypatch, tmp_path):
    monkeypatch.delenv("LLM_COST_OPS_OPS_DEV_DATABASE_URL", raising=False)
    mark = control_plane.audit_mark()
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("deploy_dev").execute_in_process(
            run_config={"ops": {"dev_deployed": {"config": {"mode": "apply"}}}},
            resources={"kubernetes": KubernetesResource(kubeconfig=str(cluster_kubeconfig))},
            instance=instance,
            raise_on_error=False,
        )

    assert not result.success
    [failure] = [e for e in result.get_step_failure_events() if e.step_key == "dev_deployed"]
    error = failure.step_failure_data.error
    assert "LLM_COST_OPS_OPS_DEV_DATABASE_URL" in (error.cause.message if error.cause else "") + error.message
    assert [e for e in control_plane.audit(mark) if e.is_write] == []
