"""`ControllerSimulator`: moves workload status forward as kube-controller-manager and the
kubelet would, one deterministic step at a time, with per-workload failure injection."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from . import derived, kubelet, rollouts, workloads
from .cluster import Cluster
from .server import ApiServer

FAILURE_MODES = kubelet.FAILURE_MODES
WORKLOAD_KINDS = ("Deployment", "ReplicaSet", "StatefulSet", "Job")


class ControllerSimulator:
    """Call step() (or settle()) from the test, or run_in_background() while the code under
    test polls. Pods need two steps to become ready: Pending, then Running."""

    def __init__(self, server: ApiServer, *, clock: Callable[[], datetime] | None = None, seed: int = 0):
        self.server = server
        self.clock = clock or (lambda: datetime.now(UTC))
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._failures: dict[tuple[str, str, str], str] = {}
        self._image_failures: list[tuple[str, str]] = []
        self._progress: dict = {}
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.errors: list[BaseException] = []

    # Failure injection

    def fail(self, kind: str, namespace: str, name: str, mode: str) -> None:
        """Make the newest revision of one workload fail in `mode`: crashloop, imagepull,
        oomkilled, progress-deadline, stuck (never ready) or, for Jobs, fail."""
        if kind not in WORKLOAD_KINDS:
            raise ValueError(f"cannot inject failures into {kind}; expected one of {WORKLOAD_KINDS}")
        self._check_mode(mode)
        with self._lock:
            self._failures[(kind, namespace, name)] = mode

    def fail_image(self, image_substring: str, mode: str) -> None:
        """Make every container whose image contains `image_substring` fail in `mode`."""
        self._check_mode(mode)
        with self._lock:
            self._image_failures.append((image_substring, mode))

    def heal(self) -> None:
        """Forget every injected failure; pods recover on the next steps."""
        with self._lock:
            self._failures.clear()
            self._image_failures.clear()

    @staticmethod
    def _check_mode(mode: str) -> None:
        if mode not in FAILURE_MODES:
            raise ValueError(f"unknown failure mode {mode!r}; expected one of {FAILURE_MODES}")

    def _failure(self, kind: str, namespace: str, name: str) -> str | None:
        return self._failures.get((kind, namespace, name))

    # Stepping

    def step(self) -> int:
        """Run every controller once; returns how many writes it made (0 when settled)."""
        with self._lock:
            before = self.server.resource_version
            cluster = Cluster(self.server, self.clock, self._rng)
            rollouts.reconcile_deployments(cluster, self._failure, self._progress)
            rollouts.reconcile_replica_sets(cluster, self._failure)
            workloads.reconcile_statefulsets(cluster, self._failure)
            workloads.reconcile_jobs(cluster, self._failure)
            derived.bind_claims(cluster)
            kubelet.run(cluster, list(self._image_failures))
            derived.publish_endpoints(cluster)
            derived.disruption_budgets(cluster)
            return self.server.resource_version - before

    def settle(self, max_steps: int = 50) -> int:
        """Step until nothing changes; returns the steps taken. Raises RuntimeError if the
        cluster is still changing after `max_steps`."""
        for steps in range(1, max_steps + 1):
            if self.step() == 0:
                return steps
        raise RuntimeError(f"the simulated cluster did not settle within {max_steps} steps")

    # Background mode

    def run_in_background(self, interval: float = 0.01) -> ControllerSimulator:
        """Step every `interval` seconds on a daemon thread until stop(); usable as a context manager."""
        if self._thread is not None:
            return self
        self._stopping.clear()

        def loop() -> None:
            while not self._stopping.wait(interval):
                try:
                    self.step()
                except Exception as error:  # keep stepping; the test inspects `errors`
                    self.errors.append(error)

        self._thread = threading.Thread(target=loop, name="controller-simulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ControllerSimulator:
        return self.run_in_background()

    def __exit__(self, *exc_info) -> None:
        self.stop()
