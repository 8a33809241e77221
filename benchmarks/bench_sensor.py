"""The rollout sensor on the real control plane (tests/control_plane/): 3 environments x
BENCH_SENSOR_WORKLOADS Deployments (default 100, one replica each, KWOK's pods Ready).

One tick is each environment's `rollout_health_<env>` sensor evaluated once (as the daemon would,
through `build_sensor_context` with a temporary instance). Measured in the same run, both timed the
same way (wall time of in-process calls, sequential, median of ROUNDS):
- ours: API requests per environment per tick (from the audit log), all healthy (target: 2, one list
  per workload kind) and with one crash-looping Deployment per environment;
- the obvious baseline, the same detection as a polling script would do it: a GET of every workload
  and a list of its pods, per object;
- time from an image change that crash-loops (KWOK) to the run request, the sensor ticking every
  SCALED_INTERVAL seconds.
A contestant that cannot run is named with the reason and the benchmark exits non-zero.
The headline figure is the last line.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections import Counter

import dagster as dg
from kubernetes import client

from benchmarks.contestants import require
from llm_cost_ops_ops.defs.kubernetes import KubernetesResource
from llm_cost_ops_ops.defs.notify import NotifierResource
from llm_cost_ops_ops.defs.sensors import rollout_sensor
from llm_cost_ops_ops.environments import load_environments
from llm_cost_ops_ops.k8s.client import Kube
from llm_cost_ops_ops.k8s.inventory import inventory_labels
from llm_cost_ops_ops.k8s.ledger import Release, ReleaseLedger
from tests.control_plane import binaries
from tests.control_plane.harness import ControlPlane, running_control_plane

WORKLOADS = int(os.environ.get("BENCH_SENSOR_WORKLOADS", "100"))
ROUNDS = 5
SCALED_INTERVAL = 0.5


def _deployment(env: str, name: str) -> dict:
    labels = {"app.kubernetes.io/name": name}
    return {
        "metadata": {"name": name, "labels": {**labels, **inventory_labels(env)}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "registry.example/i:1"}]},
            },
        },
    }


def _seed(api, specs) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    for env, spec in specs.items():
        core.create_namespace({"metadata": {"name": spec.namespace}})
        for i in range(WORKLOADS):
            apps.create_namespaced_deployment(spec.namespace, _deployment(env, f"svc-{i:03d}"))
        ledger = ReleaseLedger(Kube(api), env, spec.namespace)  # a healthy release to roll back to
        for _ in range(2):
            ledger.record(Release(env, "sha", "", [], "healthy"))
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        ready = sum(
            (d.status.available_replicas or 0) == 1
            for spec in specs.values()
            for d in apps.list_namespaced_deployment(spec.namespace).items
        )
        if ready == WORKLOADS * len(specs):
            return
        time.sleep(1)
    sys.exit("the benchmark's Deployments did not become available in 600 s")


def _tick(sensor, instance, resources, cursor=None):
    return sensor.evaluate_tick(
        dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
    )


def _per_env(plane: ControlPlane, mark: int, specs) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for event in plane.audit(mark):
        for env, spec in specs.items():
            if event.namespace == spec.namespace:
                counts[env] += 1
    return {env: counts[env] for env in specs}


def _baseline_tick(api, specs) -> list[str]:
    """Per-object polling: GET every Deployment, list its pods, judge them the obvious way."""
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    failing = []
    for spec in specs.values():
        for i in range(WORKLOADS):
            deployment = apps.read_namespaced_deployment(f"svc-{i:03d}", spec.namespace)
            selector = ",".join(f"{k}={v}" for k, v in deployment.spec.selector.match_labels.items())
            for pod in core.list_namespaced_pod(spec.namespace, label_selector=selector).items:
                for status in pod.status.container_statuses or []:
                    waiting = status.state.waiting.reason if status.state and status.state.waiting else ""
                    if waiting == "CrashLoopBackOff" and status.restart_count >= 3:
                        failing.append(f"{spec.namespace}/{deployment.metadata.name}")
    return failing


def _crash(api, spec, name: str) -> None:
    client.AppsV1Api(api).patch_namespaced_deployment(
        name,
        spec.namespace,
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "c", "image": "registry.example/i:2-crashloop"}]}
                }
            }
        },
    )


def main() -> None:
    specs = load_environments()
    if binaries.missing():
        require("the control plane (tests/control_plane)", binaries.build)
    with running_control_plane() as plane, plane.api_client() as api, dg.instance_for_test() as instance:
        resources = {
            "kubernetes": KubernetesResource(kubeconfig=str(plane.kubeconfig)),
            "notifier": NotifierResource(),
        }
        seeding = time.perf_counter()
        _seed(api, specs)
        print(
            f"seeded {len(specs)} x {WORKLOADS} Deployments, all available, in {time.perf_counter() - seeding:.0f} s"
        )
        sensors = {env: rollout_sensor(spec) for env, spec in specs.items()}
        for sensor in sensors.values():  # warm-up: imports, first instance queries
            _tick(sensor, instance, resources)
        _baseline_tick(api, specs)
        ours_s, base_s = [], []
        for _ in range(ROUNDS):
            mark = plane.audit_mark()
            started = time.perf_counter()
            results = [_tick(sensor, instance, resources) for sensor in sensors.values()]
            ours_s.append(time.perf_counter() - started)
            if any(r.run_requests for r in results):
                sys.exit("a healthy cluster produced a run request")
            healthy = _per_env(plane, mark, specs)
            mark = plane.audit_mark()
            started = time.perf_counter()
            if _baseline_tick(api, specs):
                sys.exit("the baseline saw a failure in a healthy cluster")
            base_s.append(time.perf_counter() - started)
            baseline = _per_env(plane, mark, specs)
        for spec in specs.values():
            _crash(api, spec, "svc-007")
        time.sleep(5)  # KWOK: the new pods start, crash and restart past the threshold
        mark = plane.audit_mark()
        started = time.perf_counter()
        requested = [
            r for sensor in sensors.values() for r in _tick(sensor, instance, resources).run_requests
        ]
        unhealthy_s = time.perf_counter() - started
        unhealthy = _per_env(plane, mark, specs)
        started = time.perf_counter()
        seen = _baseline_tick(api, specs)
        baseline_unhealthy_s = time.perf_counter() - started
        staging = specs["staging"]
        ops = staging.operations.model_copy(update={"max_remediations_per_hour": 100})
        latency_sensor = rollout_sensor(staging.model_copy(update={"operations": ops}))
        appeared = time.perf_counter()
        _crash(api, staging, f"svc-{WORKLOADS - 1:03d}")
        cursor, latency = None, None
        while time.perf_counter() - appeared < 60:
            tick_started = time.perf_counter()
            result = _tick(latency_sensor, instance, resources, cursor)
            cursor = result.cursor
            if any(f"svc-{WORKLOADS - 1:03d}" in (r.run_key or "") for r in result.run_requests):
                latency = time.perf_counter() - appeared
                break
            time.sleep(max(0.0, SCALED_INTERVAL - (time.perf_counter() - tick_started)))
    print(
        f"environments: {len(specs)} x {WORKLOADS} Deployments on the real control plane, rounds: {ROUNDS} (median)"
    )
    print(
        f"API requests per environment per tick, all healthy: ours {healthy} (target: 2), per-object baseline {baseline}"
    )
    print(f"API requests per environment per tick, 1 crash-looping Deployment each: ours {unhealthy}")
    print(
        f"tick with 1 crash-looping Deployment each: ours {unhealthy_s:.3f} s ({len(requested)} run requests), baseline {baseline_unhealthy_s:.3f} s ({len(seen)} seen)"
    )
    if latency is None:
        sys.exit("no run request within 60 s of a crash-looping image change")
    print(
        f"crash-looping image change -> run request, ticking every {SCALED_INTERVAL} s: {latency:.2f} s (includes KWOK's start and restarts)"
    )
    print(f"per-object polling baseline tick seconds: {statistics.median(base_s):.3f}")
    print(f"sensor tick seconds: {statistics.median(ours_s):.3f}")


if __name__ == "__main__":
    main()
