"""One deploy, rollback or migration per environment at a time, guarded in the cluster.

A coordination.k8s.io Lease in the environment's namespace names its holder (the Dagster run).
Taking it uses optimistic concurrency (resourceVersion), so two Dagster instances cannot both win.
An expired Lease (holder crashed) is taken over.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .clock import utc_now
from .errors import ApiError, LeaseHeld

if TYPE_CHECKING:
    from .client import Kube

LEASE_NAME = "llm-cost-ops-ops-deploy"


def _format(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: str) -> datetime:
    return datetime.strptime(value.replace("+00:00", "Z"), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


class EnvironmentLease:
    """Context manager holding the environment's Lease for one run. `now` is the operation's
    clock as wall time (`clock.wall_clock`), so renewals follow the clock its waits use."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        holder: str,
        duration_seconds: int,
        *,
        now: Callable[[], datetime] = utc_now,
    ):
        self.kube, self.namespace, self.holder = kube, namespace, holder
        self.duration, self.now = duration_seconds, now
        self._renewed: datetime | None = None
        # The resourceVersion of the Lease `acquire` took over ('' when it created the Lease).
        self.taken_over = ""

    def version(self) -> str:
        """The Lease's resourceVersion now ('' when there is none). Every holder changes it when
        it takes and when it releases the Lease, so the same version later means no deploy, rollback
        or migration held it in between."""
        current = self.kube.get("coordination.k8s.io/v1", "Lease", LEASE_NAME, self.namespace)
        return str(((current or {}).get("metadata") or {}).get("resourceVersion") or "")

    def _body(self, current: dict[str, Any] | None) -> dict[str, Any]:
        moment = _format(self.now())
        body = current or {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": LEASE_NAME, "namespace": self.namespace},
        }
        body.setdefault("apiVersion", "coordination.k8s.io/v1")
        body.setdefault("kind", "Lease")
        body["spec"] = {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self.duration,
            "acquireTime": moment,
            "renewTime": moment,
        }
        return body

    def acquire(self) -> None:
        """Take the Lease. Raises LeaseHeld while another live holder has it."""
        current = self.kube.get("coordination.k8s.io/v1", "Lease", LEASE_NAME, self.namespace)
        try:
            if current is None:
                self.kube.create(self._body(None))
                self._renewed, self.taken_over = self.now(), ""
                return
            spec = current.get("spec") or {}
            holder = spec.get("holderIdentity")
            if holder and holder != self.holder:
                renewed = _parse(str(spec.get("renewTime") or spec.get("acquireTime")))
                expires = renewed + timedelta(seconds=spec.get("leaseDurationSeconds") or 0)
                if expires > self.now():
                    raise LeaseHeld(
                        f"{self.namespace}: another deploy ({holder}) holds Lease {LEASE_NAME} until "
                        f"{_format(expires)}; wait for it or let the lease expire"
                    )
            taken_over = str((current.get("metadata") or {}).get("resourceVersion") or "")
            self.kube.replace(self._body(current))
            self._renewed, self.taken_over = self.now(), taken_over
        except ApiError as exc:
            if exc.status == 409:
                raise LeaseHeld(f"{self.namespace}: Lease {LEASE_NAME} was taken concurrently") from None
            raise

    def renew_if_due(self) -> None:
        """Move renewTime forward once a third of the duration has passed (called while waiting).

        Raises LeaseHeld when another holder has taken the Lease meanwhile.
        """
        if self._renewed is None or self.now() - self._renewed < timedelta(seconds=self.duration / 3):
            return
        current = self.kube.get("coordination.k8s.io/v1", "Lease", LEASE_NAME, self.namespace)
        spec = (current or {}).get("spec") or {}
        if current is None or spec.get("holderIdentity") != self.holder:
            raise LeaseHeld(f"{self.namespace}: lost Lease {LEASE_NAME} to {spec.get('holderIdentity')!r}")
        spec["renewTime"] = _format(self.now())
        try:
            self.kube.replace(current)
        except ApiError as exc:
            if exc.status == 409:
                raise LeaseHeld(f"{self.namespace}: Lease {LEASE_NAME} changed while renewing") from None
            raise
        self._renewed = self.now()

    def release(self) -> None:
        current = self.kube.get("coordination.k8s.io/v1", "Lease", LEASE_NAME, self.namespace)
        if current and (current.get("spec") or {}).get("holderIdentity") == self.holder:
            current["spec"]["holderIdentity"] = None
            try:
                self.kube.replace(current)
            except ApiError as exc:
                if exc.status not in (404, 409):
                    raise

    def __enter__(self) -> EnvironmentLease:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
