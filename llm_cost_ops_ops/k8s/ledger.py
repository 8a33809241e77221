"""The release ledger: one Secret per release in the environment's namespace, as Helm keeps them.

Each release holds the environment, revision, bundle digest, the rendered bundle itself, image
references, outcome, times and the Dagster run id, gzip-compressed. History is capped (default 10).
The Secrets carry `app.kubernetes.io/managed-by` but not the bundle's environment label, so prune
never selects them.
"""

from __future__ import annotations

import base64
import gzip
import json
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .errors import ApiError, ReleaseNotFound
from .inventory import MANAGED_BY, MANAGED_BY_LABEL

if TYPE_CHECKING:
    from .client import Kube

RELEASE_OF_LABEL = "llm-cost-ops-ops/release-of"
REVISION_LABEL = "llm-cost-ops-ops/revision"
OUTCOME_LABEL = "llm-cost-ops-ops/outcome"
SECRET_TYPE = "llm-cost-ops-ops/release.v1"


@dataclass(frozen=True)
class Release:
    environment: str
    digest: str
    bundle: str
    images: list[str]
    outcome: str  # healthy | failed
    operation: str = "deploy"  # deploy | rollback | teardown
    started_at: str = ""
    finished_at: str = ""
    run_id: str = ""
    revision: int = 0
    rollback_of: int | None = None
    detail: str = ""
    migrations: list[str] = field(default_factory=list)
    cluster: str = ""  # the identity of the cluster it ran on (k8s/identity.py)

    @property
    def healthy(self) -> bool:
        return self.outcome == "healthy"

    def summary(self) -> dict[str, Any]:
        """Everything but the bundle text, for metadata and logs."""
        return {k: v for k, v in asdict(self).items() if k != "bundle"}


def _encode(release: Release) -> str:
    return base64.b64encode(gzip.compress(json.dumps(asdict(release)).encode())).decode()


def _decode(value: str) -> Release:
    # Secret data is base64 on the wire; the bytes are gzip(json).
    return Release(**json.loads(gzip.decompress(base64.b64decode(value))))


class ReleaseLedger:
    """Read and append the releases of one environment."""

    def __init__(self, kube: Kube, environment: str, namespace: str, history: int = 10):
        self.kube, self.environment, self.namespace, self.history = kube, environment, namespace, history

    def _secrets(self) -> list[dict[str, Any]]:
        selector = f"{MANAGED_BY_LABEL}={MANAGED_BY},{RELEASE_OF_LABEL}={self.environment}"
        try:
            return self.kube.list("v1", "Secret", self.namespace, selector)
        except ApiError as exc:
            if exc.status == 404:  # the namespace does not exist yet: no releases
                return []
            raise

    def releases(self) -> list[Release]:
        """Every kept release, oldest first."""
        found = [_decode((s.get("data") or {})["release"]) for s in self._secrets()]
        return sorted(found, key=lambda r: r.revision)

    def latest(self) -> Release | None:
        releases = self.releases()
        return releases[-1] if releases else None

    def last_healthy(self, before: int | None = None) -> Release:
        """The newest healthy release (older than revision `before` if given)."""
        for release in reversed(self.releases()):
            if release.healthy and (before is None or release.revision < before):
                return release
        raise ReleaseNotFound(f"{self.environment}: no healthy release in the ledger to roll back to")

    def record(self, release: Release) -> Release:
        """Append a release with the next revision number, then drop the oldest beyond history."""
        existing = self._secrets()
        revisions = [int(s["metadata"]["labels"].get(REVISION_LABEL, 0)) for s in existing]
        stored = replace(release, environment=self.environment, revision=max(revisions, default=0) + 1)
        self.kube.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": SECRET_TYPE,
                "metadata": {
                    "name": f"llm-cost-ops-ops.release.v{stored.revision}",
                    "namespace": self.namespace,
                    "labels": {
                        MANAGED_BY_LABEL: MANAGED_BY,
                        RELEASE_OF_LABEL: self.environment,
                        REVISION_LABEL: str(stored.revision),
                        OUTCOME_LABEL: stored.outcome,
                    },
                },
                "data": {"release": _encode(stored)},
            }
        )
        for secret in sorted(existing, key=lambda s: int(s["metadata"]["labels"].get(REVISION_LABEL, 0)))[
            : max(0, len(existing) + 1 - self.history)
        ]:
            self.kube.delete("v1", "Secret", secret["metadata"]["name"], self.namespace)
        return stored
