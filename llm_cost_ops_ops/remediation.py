"""What to do about a detected failure: the environment's policy, held back by what already
happened (the same failure handled before), the hourly budget and the rollback schema guard.

Plain Python: the Dagster sensor gathers the facts (runs in the instance, the release ledger) and
turns a `Decision` into a run request, an alert or a skip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .k8s.rollback_guard import SchemaVerdict

Policy = Literal["redeploy", "rollback", "alert"]
JOB_PREFIX = {"redeploy": "deploy", "rollback": "rollback"}


@dataclass(frozen=True)
class Decision:
    action: Literal["run", "alert", "skip"]
    reason: str
    job: str | None = None


def remediation_job(policy: Policy, environment: str) -> str | None:
    """The job a policy runs (`deploy_<env>` or `rollback_<env>`); None for alert-only."""
    prefix = JOB_PREFIX.get(policy)
    return f"{prefix}_{environment}" if prefix else None


# Failures of the new revision itself: applying the same bundle again brings the same pods back.
# Only a pod that was killed or evicted (a workload short of replicas, a database not ready, a
# progress deadline missed for want of a node) may be cured by a re-apply.
NOT_CURABLE_BY_REAPPLY = frozenset(
    {
        "CrashLoopBackOff",
        "OOMKilled",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)


def decide(
    policy: Policy,
    environment: str,
    *,
    handled_by: str | None,
    recent: int,
    limit: int,
    schema: SchemaVerdict | None = None,
    reason: str = "",
) -> Decision:
    """`handled_by`: the run or alert that already handled this failure's key; `recent`: the
    remediation runs of this environment in the last hour; `schema`: the guard's verdict for a
    rollback (None when not a rollback or not checked); `reason`: the failure's reason (a redeploy
    is only offered for failures a re-apply can cure, otherwise the decision is an alert)."""
    if handled_by:
        return Decision("skip", f"already handled by {handled_by}")
    if policy == "redeploy" and reason in NOT_CURABLE_BY_REAPPLY:
        return Decision(
            "alert",
            f"{environment}: a redeploy re-applies the same bundle and cannot cure {reason}; alert instead "
            "(roll back or fix the image)",
        )
    job = remediation_job(policy, environment)
    if job is None:
        return Decision("alert", f"{environment}: remediation policy is alert only")
    if recent >= limit:
        return Decision(
            "alert",
            f"{environment}: {recent} remediation run(s) in the last hour reached the limit of {limit}; "
            "alert only until the hour has passed",
        )
    if schema is not None and not schema.allowed:
        return Decision("alert", f"{environment}: {schema.reason}")
    return Decision("run", f"{policy} via {job}", job)
