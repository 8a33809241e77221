"""The heal job of one environment (`heal_<env>`): what the drift self-heal sensor runs.

It re-applies the *running* release's stored bundle with force and removes fields other managers
added (llm_cost_ops_ops/k8s/heal.py), under the environment's Lease and its run queue; never the
current overlay, so a heal after a rollback does not roll the environment forward again.
"""

# No `from __future__ import annotations`: Dagster reads context and resource annotations.

from typing import Any

import dagster as dg

from ..environments import EnvironmentSpec
from .keys import NO_RETRY_TAGS, deployed_key, env_pool, env_tags
from .kubernetes import KubernetesResource
from .records import expected_cluster


def heal_job_name(environment: str) -> str:
    return f"heal_{environment}"


def heal_definitions(spec: EnvironmentSpec) -> dg.Definitions:
    env = spec.name

    @dg.op(
        name=f"heal_release_{env}",
        pool=env_pool(env),
        description=f"Re-apply the running {env} release with force and remove other managers' additions.",
    )
    def _heal(context: dg.OpExecutionContext, kubernetes: KubernetesResource):
        from ..k8s.engine import DeployOptions
        from ..k8s.heal import execute_heal
        from ..k8s.ledger import ReleaseLedger
        from ..k8s.wait import WaitTiming

        kube = kubernetes.connect(spec.deploy.kube_context)
        ledger = ReleaseLedger(kube, env, spec.namespace, spec.deploy.history)
        options = DeployOptions(
            manage_namespace=spec.deploy.manage_namespace,
            rollout=WaitTiming(spec.deploy.rollout_deadline_seconds, spec.deploy.poll_seconds),
            database=WaitTiming(spec.deploy.database_deadline_seconds, spec.deploy.poll_seconds),
        )
        healed = execute_heal(
            kube,
            ledger,
            spec.namespace,
            context.run.run_id,
            options,
            log=context.log.info,
            expected_cluster=expected_cluster(context.instance, spec),
        )
        changed = {
            o.ref: o.action for o in healed.deploy.outcomes() if o.action not in ("unchanged", "skipped")
        }
        summary: dict[str, Any] = {
            "healed_to_revision": healed.target.revision,
            "digest": healed.target.digest,
            "reapplied": dg.MetadataValue.json(changed),
            "removed_foreign_fields": dg.MetadataValue.json(healed.removed),
        }
        context.log.info(
            f"{env}: healed to r{healed.target.revision}: reapplied {changed or 'nothing'}, "
            f"removed {healed.removed or 'nothing'}"
        )
        context.log_event(dg.AssetObservation(asset_key=deployed_key(env), metadata=summary))

    @dg.job(
        name=heal_job_name(env),
        tags={**env_tags(env, "heal"), **NO_RETRY_TAGS},
        description=f"Put {env} back to its running release: re-apply it with force, remove fields "
        "other managers added.",
    )
    def heal_job():
        _heal()

    return dg.Definitions(jobs=[heal_job])
