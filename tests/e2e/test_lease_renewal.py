"""The environment Lease is renewed while a deploy waits, and a lost Lease stops the deploy.

Cases: renew_if_due does nothing before a third of the duration has passed (no request), then
moves renewTime forward; a Lease taken over by another holder makes renew_if_due raise LeaseHeld;
the engine calls its heartbeat (where execute_release renews the Lease) between the polls of
every wait.
"""

from __future__ import annotations

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


def test_engine_beats_between_wait_polls(kube, k8s_server, render_overlays):
    from llm_cost_ops_ops.k8s.engine import DeployEngine, DeployOptions
    from llm_cost_ops_ops.k8s.wait import WaitTiming
    from tests.k8s_double import ControllerSimulator

    simulator = ControllerSimulator(k8s_server)
    beats: list[int] = []
    engine = DeployEngine(kube, "dev", sleeper=lambda _: simulator.step(), heartbeat=lambda: beats.append(1))
    bundle = render_overlays["dev"]
    options = DeployOptions(rollout=WaitTiming(30, 0.01), database=WaitTiming(30, 0.01))
    result = engine.deploy([o.body for o in bundle.objects], NAMESPACE, options)
    assert result.counts()["created"] > 0
    assert beats  # every poll of the database and API waits beat once before sleeping
