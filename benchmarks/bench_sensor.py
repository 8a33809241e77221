"""The rollout sensor on the API-server test double: 3 environments x 200 Deployments.

One tick is each environment's `rollout_health_<env>` sensor evaluated once (as the daemon would,
through `build_sensor_context` with a temporary instance). Measured in the same run:
- API requests per environment per tick, all healthy (target: 2, one list per workload kind) and
  with one unhealthy Deployment per environment (its ReplicaSets and pods are listed too);
- tick time over the 3 environments (median of ROUNDS; target: under 0.5 s);
- time from a ProgressDeadlineExceeded condition appearing to the run request, with the sensor
  ticking on a scaled interval (SCALED_INTERVAL s standing for 30 s) and the condition written at
  random moments (target: within one interval; the worst case is one interval plus the tick that
  sees it).
The sensors log a note per failure on stderr; the figures are on stdout.
The headline figure is the last line.
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import dagster as dg
from kubernetes import client

from llm_cost_ops_ops.defs.kubernetes import KubernetesResource
from llm_cost_ops_ops.defs.notify import NotifierResource
from llm_cost_ops_ops.defs.sensors import rollout_sensor
from llm_cost_ops_ops.environments import load_environments
from llm_cost_ops_ops.k8s.client import Kube
from llm_cost_ops_ops.k8s.inventory import inventory_labels
from llm_cost_ops_ops.k8s.ledger import Release, ReleaseLedger
from tests.k8s_double import ApiServer

WORKLOADS = 200
ROUNDS = 9
SCALED_INTERVAL = 0.5
TRIALS = 6
DEADLINE = {
    "type": "Progressing",
    "status": "False",
    "reason": "ProgressDeadlineExceeded",
    "message": "timed out",
}


def _deployment(env: str, ns: str, name: str) -> dict:
    labels = {"app.kubernetes.io/name": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {**labels, **inventory_labels(env)},
            "annotations": {"deployment.kubernetes.io/revision": "1"},
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "i:1"}]},
            },
        },
    }


def _status(body: dict, *, updated: int = 2, conditions: list | None = None) -> dict:
    return {
        "observedGeneration": body["metadata"]["generation"],
        "replicas": 2,
        "updatedReplicas": updated,
        "readyReplicas": updated,
        "availableReplicas": updated,
        "conditions": conditions or [],
    }


def _seed(server: ApiServer, specs) -> None:
    for env, spec in specs.items():
        server.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": spec.namespace}})
        for i in range(WORKLOADS):
            body = server.seed(_deployment(env, spec.namespace, f"svc-{i:03d}"))
            server.write_status(body, _status(body), manager="kube-controller-manager")
        ledger = ReleaseLedger(Kube(client.ApiClient(server.client_configuration())), env, spec.namespace)
        for _ in range(2):
            ledger.record(Release(env, "sha", "", [], "healthy"))


def _set(server: ApiServer, spec, name: str, **status) -> None:
    body = server.read("apps/v1", "Deployment", name, spec.namespace)
    server.write_status(body, _status(body, **status), manager="kube-controller-manager")


def _tick(sensor, instance, resources, cursor=None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
    return sensor.evaluate_tick(context)


def _per_env(server: ApiServer, specs) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for request in server.requests:
        for env, spec in specs.items():
            if f"/namespaces/{spec.namespace}/" in request.path:
                counts[env] += 1
    return {env: counts[env] for env in specs}


class TickLoop:
    """Ticks one sensor every SCALED_INTERVAL seconds on a thread, carrying its cursor as the daemon
    does, until a run request names `target`."""

    def __init__(self, sensor, instance, resources) -> None:
        self.sensor, self.instance, self.resources = sensor, instance, resources
        self.cursor: str | None = None
        self.target = ""
        self.requested_at = 0.0
        self.found = threading.Event()
        self._stop = threading.Event()

    def run(self, target: str) -> threading.Thread:
        self.target, self.requested_at = target, 0.0
        self.found.clear()
        self._stop.clear()
        thread = threading.Thread(target=self._loop, daemon=True)
        thread.start()
        return thread

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            result = _tick(self.sensor, self.instance, self.resources, self.cursor)
            self.cursor = result.cursor
            if any(self.target in (r.run_key or "") for r in result.run_requests):
                self.requested_at = time.perf_counter()
                self.found.set()
                return
            self._stop.wait(max(0.0, SCALED_INTERVAL - (time.perf_counter() - started)))

    def stop(self) -> None:
        self._stop.set()


def _detection_latency(server, spec, instance, resources) -> list[float]:
    """Seconds from the condition appearing to the run request, sensor ticking every SCALED_INTERVAL
    (the hourly remediation limit raised so that every trial may request a run)."""
    ops = spec.operations.model_copy(update={"max_remediations_per_hour": 100})
    loop = TickLoop(rollout_sensor(spec.model_copy(update={"operations": ops})), instance, resources)
    rng = random.Random(7)
    latencies = []
    for trial in range(TRIALS):
        name = f"svc-{100 + trial:03d}"
        thread = loop.run(name)
        time.sleep(rng.uniform(0, SCALED_INTERVAL))
        appeared = time.perf_counter()
        _set(server, spec, name, updated=1, conditions=[DEADLINE])
        loop.found.wait(5 * SCALED_INTERVAL)
        loop.stop()
        thread.join()
        if not loop.requested_at:
            sys.exit(f"trial {trial}: no run request within {5 * SCALED_INTERVAL} s")
        latencies.append(loop.requested_at - appeared)
        _set(server, spec, name)  # healthy again for the next trial
    return latencies


def main() -> None:
    specs = load_environments()
    with tempfile.TemporaryDirectory() as tmp, ApiServer() as server, dg.instance_for_test() as instance:
        kubeconfig = server.kubeconfig(Path(tmp) / "kubeconfig")
        resources = {
            "kubernetes": KubernetesResource(kubeconfig=str(kubeconfig)),
            "notifier": NotifierResource(),
        }
        _seed(server, specs)
        sensors = {env: rollout_sensor(spec) for env, spec in specs.items()}
        for sensor in sensors.values():  # warm-up: imports, first instance queries
            _tick(sensor, instance, resources)
        times = []
        for _ in range(ROUNDS):
            server.reset_counters()
            started = time.perf_counter()
            results = [_tick(sensor, instance, resources) for sensor in sensors.values()]
            times.append(time.perf_counter() - started)
            if any(r.run_requests for r in results):
                sys.exit("a healthy cluster produced a run request")
        healthy = _per_env(server, specs)
        for spec in specs.values():
            _set(server, spec, "svc-007", updated=1)
        server.reset_counters()
        unhealthy_started = time.perf_counter()
        for sensor in sensors.values():
            _tick(sensor, instance, resources)
        unhealthy_s = time.perf_counter() - unhealthy_started
        unhealthy = _per_env(server, specs)
        latencies = _detection_latency(server, specs["staging"], instance, resources)
    tick = statistics.median(times)
    print(f"environments: {len(specs)} x {WORKLOADS} Deployments, rounds: {ROUNDS} (median)")
    print(f"API requests per environment per tick, all healthy: {healthy} (target: 2)")
    print(f"API requests per environment per tick, 1 unhealthy Deployment each: {unhealthy}")
    print(f"tick over 3 environments with 1 unhealthy Deployment each: {unhealthy_s:.3f} s")
    print(
        f"ProgressDeadlineExceeded -> run request, interval scaled to {SCALED_INTERVAL} s: "
        f"median {statistics.median(latencies):.3f} s, max {max(latencies):.3f} s "
        f"(= interval {max(latencies) - SCALED_INTERVAL:+.3f} s) over {TRIALS} trials; "
        "at the default 30 s: the next tick, within 30 s plus one tick"
    )
    print(f"sensor tick seconds: {tick:.3f}")


if __name__ == "__main__":
    main()
