"""Failed-rollout detection (llm_cost_ops_ops.k8s.detect): pure functions over workload and pod dicts.

Cases:
- a healthy Deployment needs no pods and has no failure; an unobserved generation is not judged
  (its revision fields still name the previous revision);
- ProgressDeadlineExceeded is a failure without listing pods;
- CrashLoopBackOff and OOMKilled count from the restart threshold on; ImagePullBackOff and
  InvalidImageName at once; ErrImagePull only once the pod is older than the grace period;
- only the newest revision's pods are judged (an old ReplicaSet's crash-looping pods are not);
  StatefulSet pods by controller-revision-hash;
- a StatefulSet not ready is timed from the first tick that saw it and fails past its deadline;
  a Deployment with more unavailable replicas than maxUnavailable (25%, an integer, Recreate) fails
  after the grace period, and not within maxUnavailable;
- the dedupe key is environment, object and revision: the same across ticks, new for a new revision.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from llm_cost_ops_ops.k8s.detect import Thresholds, judge, needs_pods, pod_failure, revision_pods

pytestmark = pytest.mark.unit

NOW = 1_800_000_000.0
T = Thresholds(restarts=3, grace_seconds=120, statefulset_deadline_seconds=600)


def deployment(
    revision="2",
    *,
    generation=2,
    observed=2,
    replicas=4,
    updated=4,
    available=4,
    unavailable=0,
    conditions=(),
    max_unavailable=None,
    strategy="RollingUpdate",
):
    spec = {"replicas": replicas, "selector": {"matchLabels": {"app": "api"}}, "strategy": {"type": strategy}}
    if max_unavailable is not None:
        spec["strategy"]["rollingUpdate"] = {"maxUnavailable": max_unavailable}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "api",
            "namespace": "ns",
            "uid": "dep-uid",
            "generation": generation,
            "annotations": {"deployment.kubernetes.io/revision": revision},
        },
        "spec": spec,
        "status": {
            "observedGeneration": observed,
            "replicas": replicas,
            "updatedReplicas": updated,
            "availableReplicas": available,
            "unavailableReplicas": unavailable,
            "conditions": list(conditions),
        },
    }


def statefulset(ready=1, current="db-1", update="db-2"):
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "ns", "generation": 3},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "db"}}},
        "status": {
            "observedGeneration": 3,
            "readyReplicas": ready,
            "currentRevision": current,
            "updateRevision": update,
            "updatedReplicas": 1,
        },
    }


def pod(name="api-x", *, waiting=None, last_terminated=None, restarts=0, age=0.0, labels=None):
    created = datetime.fromtimestamp(NOW - age, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    last = {"terminated": {"reason": last_terminated}} if last_terminated else {}
    return {
        "metadata": {"name": name, "creationTimestamp": created, "labels": labels or {}},
        "status": {
            "containerStatuses": [
                {
                    "name": "app",
                    "image": "llm-cost-ops:2",
                    "state": state,
                    "lastState": last,
                    "restartCount": restarts,
                }
            ]
        },
    }


DEADLINE = {
    "type": "Progressing",
    "status": "False",
    "reason": "ProgressDeadlineExceeded",
    "message": 'ReplicaSet "api-abc" has timed out progressing.',
}


def test_healthy_deployment_is_not_inspected():
    healthy = deployment()
    assert not needs_pods(healthy)
    assert judge("dev", healthy, None, NOW, {}, T).failure is None


def test_unobserved_generation_is_not_judged():
    fresh = deployment(generation=3, observed=2, updated=1, available=1)
    assert not needs_pods(fresh)
    verdict = judge("dev", fresh, [pod(waiting="CrashLoopBackOff", restarts=5)], NOW, {}, T)
    assert verdict.failure is None and verdict.pending == {}


def test_progress_deadline_exceeded_needs_no_pods():
    failed = deployment(updated=1, available=0, conditions=[DEADLINE])
    assert not needs_pods(failed)
    failure = judge("staging", failed, None, NOW, {}, T).failure
    assert failure is not None and failure.reason == "ProgressDeadlineExceeded"
    assert failure.key == "staging:Deployment/ns/api@2"
    assert "timed out progressing" in failure.message


@pytest.mark.parametrize(
    ("container", "reason"),
    [
        ({"waiting": "CrashLoopBackOff", "restarts": 2}, None),
        ({"waiting": "CrashLoopBackOff", "restarts": 3}, "CrashLoopBackOff"),
        ({"waiting": "CrashLoopBackOff", "last_terminated": "OOMKilled", "restarts": 3}, "OOMKilled"),
        ({"last_terminated": "OOMKilled", "restarts": 1}, None),
        ({"waiting": "ImagePullBackOff"}, "ImagePullBackOff"),
        ({"waiting": "InvalidImageName"}, "InvalidImageName"),
        ({"waiting": "ErrImagePull", "age": 30}, None),
        ({"waiting": "ErrImagePull", "age": 121}, "ErrImagePull"),
        ({"waiting": "ContainerCreating"}, None),
    ],
)
def test_pod_failures_and_thresholds(container, reason):
    found = pod_failure(pod(**container), NOW, T)
    assert (found[0] if found else None) == reason
    if found:
        assert found[1].startswith("pod api-x container app: ")


def test_only_the_newest_revision_pods_count():
    rolling = deployment(revision="2", updated=1, available=0)
    owner = [{"uid": "dep-uid"}]
    replica_sets = [
        {
            "metadata": {
                "ownerReferences": owner,
                "annotations": {"deployment.kubernetes.io/revision": "1"},
                "labels": {"pod-template-hash": "old"},
            }
        },
        {
            "metadata": {
                "ownerReferences": owner,
                "annotations": {"deployment.kubernetes.io/revision": "2"},
                "labels": {"pod-template-hash": "new"},
            }
        },
        {
            "metadata": {
                "ownerReferences": [{"uid": "other"}],
                "annotations": {"deployment.kubernetes.io/revision": "2"},
                "labels": {"pod-template-hash": "other"},
            }
        },
    ]
    pods = [
        pod("old-1", waiting="CrashLoopBackOff", restarts=5, labels={"pod-template-hash": "old"}),
        pod("new-1", labels={"pod-template-hash": "new"}),
    ]
    assert needs_pods(rolling)
    selected = revision_pods(rolling, replica_sets, pods)
    assert [p["metadata"]["name"] for p in selected] == ["new-1"]
    assert judge("dev", rolling, selected, NOW, {}, T).failure is None
    sts_pods = [
        pod("db-0", labels={"controller-revision-hash": "db-2"}),
        pod("db-x", labels={"controller-revision-hash": "db-1"}),
    ]
    assert [p["metadata"]["name"] for p in revision_pods(statefulset(), [], sts_pods)] == ["db-0"]


def test_statefulset_not_ready_past_its_deadline():
    stuck = statefulset(ready=0)
    first = judge("prod", stuck, [], NOW, {}, T)
    assert first.failure is None and list(first.pending.values()) == [NOW]
    later = judge("prod", stuck, [], NOW + 599, first.pending, T)
    assert later.failure is None and later.pending == first.pending
    past = judge("prod", stuck, [], NOW + 600, later.pending, T)
    assert past.failure is not None and past.failure.reason == "StatefulSetNotReady"
    assert past.failure.key == "prod:StatefulSet/ns/db@db-2"
    assert judge("prod", statefulset(ready=1, current="db-2"), [], NOW, {}, T).failure is None


@pytest.mark.parametrize(
    ("max_unavailable", "strategy", "unavailable", "fails"),
    [
        ("25%", "RollingUpdate", 2, True),
        ("25%", "RollingUpdate", 1, False),
        (2, "RollingUpdate", 2, False),
        (None, "Recreate", 4, False),
        (None, "RollingUpdate", 2, True),
    ],
)
def test_unavailable_replicas_beyond_max_unavailable(max_unavailable, strategy, unavailable, fails):
    degraded = deployment(
        available=4 - unavailable, unavailable=unavailable, max_unavailable=max_unavailable, strategy=strategy
    )
    first = judge("dev", degraded, [], NOW, {}, T)
    assert first.failure is None
    after = judge("dev", degraded, [], NOW + 120, first.pending, T)
    assert (after.failure is not None) == fails
    if fails:
        assert after.failure.reason == "UnavailableReplicas"
        assert after.failure.message.startswith(
            f"{unavailable} replicas unavailable (maxUnavailable 1) for 120s"
        )


def test_dedupe_key_follows_the_revision():
    def key(revision):
        failure = judge("dev", deployment(revision, conditions=[DEADLINE]), None, NOW, {}, T).failure
        return failure.key

    assert key("2") == key("2") == "dev:Deployment/ns/api@2"
    assert key("3") != key("2")
