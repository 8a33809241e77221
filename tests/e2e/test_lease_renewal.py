"""The environment Lease is renewed while a deploy waits, and a lost Lease stops the deploy.

Cases: renew_if_due does nothing before a third of the duration has passed (no request), then
moves renewTime forward; a Lease taken over by another holder makes renew_if_due raise LeaseHeld;
the engine calls its heartbeat (where execute_release renews the Lease) exactly once before each
sleep of every wait; a deploy through execute_release on an injected clock (polls a third of the
Lease apart) renews the Lease at every poll, its renewTime advancing one poll each time, and the
release's start and finish times follow that same clock.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from kubernetes import client

from llm_cost_ops_ops.k8s.client import Kube
from llm_cost_ops_ops.k8s.errors import LeaseHeld
from llm_cost_ops_ops.k8s.lease import LEASE_NAME, EnvironmentLease

pytestmark = pytest.mark.e2e

NAMESPACE = "llm-cost-ops-dev"


class FakeNow:
    def __init__(self) -> None:
        self.moment = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture
def kube(k8s_server):
    kube = Kube(client.ApiClient(k8s_server.client_configuration()), sleeper=lambda _: None)
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    return kube


def _renew_time(kube: Kube) -> str:
    lease = kube.get("coordination.k8s.io/v1", "Lease", LEASE_NAME, NAMESPACE)
    assert lease is not None
    return lease["spec"]["renewTime"]


def test_renews_after_a_third_of_the_duration(kube, k8s_server):
    now = FakeNow()
    lease = EnvironmentLease(kube, NAMESPACE, "run-a", 300, now=now)
    lease.acquire()
    first = _renew_time(kube)
    k8s_server.reset_counters()
    now.moment += timedelta(seconds=60)
    lease.renew_if_due()
    assert k8s_server.requests == []  # not due yet: no request at all
    now.moment += timedelta(seconds=60)
    lease.renew_if_due()
    assert _renew_time(kube) > first


def test_a_lease_taken_over_stops_the_holder(kube):
    now = FakeNow()
    lease = EnvironmentLease(kube, NAMESPACE, "run-a", 300, now=now)
    lease.acquire()
    now.moment += timedelta(seconds=400)  # expired: another deploy may take it
    EnvironmentLease(kube, NAMESPACE, "run-b", 300, now=now).acquire()
    with pytest.raises(LeaseHeld, match=r"lost Lease .* to 'run-b'"):
        lease.renew_if_due()


class FakeClock:
    """A monotonic clock that moves only when the waits sleep; each sleep steps the controllers."""

    def __init__(self, simulator, on_sleep=lambda: None) -> None:
        self.seconds, self.sleeps, self.simulator, self.on_sleep = 0.0, 0, simulator, on_sleep

    def __call__(self) -> float:
        return self.seconds

    def sleep(self, seconds: float) -> None:
        self.on_sleep()
        self.sleeps += 1
        self.seconds += seconds
        self.simulator.step()


def test_engine_beats_once_per_wait_poll(kube, k8s_controllers, render_overlays):
    from llm_cost_ops_ops.k8s.engine import DeployEngine, DeployOptions
    from llm_cost_ops_ops.k8s.wait import WaitTiming

    clock = FakeClock(k8s_controllers)
    beats: list[int] = []  # the number of sleeps seen at each beat
    engine = DeployEngine(
        kube, "dev", clock=clock, sleeper=clock.sleep, heartbeat=lambda: beats.append(clock.sleeps)
    )
    options = DeployOptions(rollout=WaitTiming(300, 2), database=WaitTiming(300, 2))
    result = engine.deploy([o.body for o in render_overlays["dev"].objects], NAMESPACE, options)
    assert result.counts()["created"] > 0
    assert clock.sleeps > 0
    assert beats == list(range(clock.sleeps))  # one beat before each sleep, none in between


def test_a_deploy_renews_its_lease_at_every_poll_on_the_injected_clock(
    kube, k8s_server, k8s_controllers, render_overlays
):
    from llm_cost_ops_ops.k8s.engine import DeployOptions
    from llm_cost_ops_ops.k8s.releases import ReleaseRequest, execute_release
    from llm_cost_ops_ops.k8s.wait import WaitTiming

    renewals: list[datetime] = []

    def note_renew_time() -> None:
        lease = k8s_server.read("coordination.k8s.io/v1", "Lease", LEASE_NAME, NAMESPACE)
        renewals.append(datetime.strptime(lease["spec"]["renewTime"], "%Y-%m-%dT%H:%M:%S.%fZ"))

    clock = FakeClock(k8s_controllers, on_sleep=note_renew_time)
    poll = 10.0  # a third of the Lease: every poll after the first finds a renewal due
    options = DeployOptions(rollout=WaitTiming(600, poll), database=WaitTiming(600, poll))
    request = ReleaseRequest.for_bundle(render_overlays["dev"], NAMESPACE, "run-a", options, lease_seconds=30)
    result, release = execute_release(kube, request, clock=clock, sleeper=clock.sleep)

    assert result.counts()["created"] > 0
    assert release is not None and release.outcome == "healthy"
    assert len(renewals) == clock.sleeps >= 3
    steps = [later - earlier for earlier, later in itertools.pairwise(renewals)]
    assert steps == [timedelta(seconds=poll)] * len(steps)  # renewed once per poll, on the fake clock
    elapsed = datetime.fromisoformat(release.finished_at) - datetime.fromisoformat(release.started_at)
    assert abs(elapsed.total_seconds() - clock.seconds) <= 1  # the release times follow the same clock
