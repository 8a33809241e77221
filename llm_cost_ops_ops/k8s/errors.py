"""Typed Kubernetes errors: what failed, where, and what to do."""

from __future__ import annotations

from ..errors import OpsError

TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})


class KubernetesError(OpsError):
    """Base of every error the Kubernetes layer raises."""


class ApiError(KubernetesError):
    """The API server refused a request; carries its status code and reason."""

    def __init__(self, message: str, status: int = 0, reason: str = ""):
        super().__init__(message)
        self.status = status
        self.reason = reason

    @property
    def transient(self) -> bool:
        return self.status in TRANSIENT_STATUS or self.status == 0


class NotConfigured(KubernetesError):
    """No kubeconfig, context or in-cluster configuration could be found."""


class DryRunRejected(KubernetesError):
    """The server-side dry-run rejected an object; nothing was applied."""


class FieldConflict(KubernetesError):
    """Server-side apply found fields owned by another manager."""


class RolloutFailed(KubernetesError):
    """A workload's rollout failed (deadline exceeded, pods crash-looping, image pull errors)."""


class RolloutTimeout(RolloutFailed):
    """A workload did not become healthy before its deadline."""


class LeaseHeld(KubernetesError):
    """Another deploy holds this environment's Lease."""


class ReleaseNotFound(KubernetesError):
    """The release ledger has no release matching the request."""


class PromotionBlocked(KubernetesError):
    """A prod deploy whose application images staging does not run healthily."""


class MigrationJobFailed(KubernetesError):
    """The migration Job failed; carries the container's exit code (None when it never ran or is
    gone) and the last lines of its log."""

    def __init__(
        self, message: str, *, job: str = "", exit_code: int | None = None, last_lines: tuple[str, ...] = ()
    ):
        super().__init__(message)
        self.job = job
        self.exit_code = exit_code
        self.last_lines = last_lines


class MigrationJobTimeout(MigrationJobFailed):
    """The migration Job had not finished when the wait's deadline passed (it is left running)."""


class TeardownRefused(KubernetesError):
    """A teardown was refused before anything was deleted (confirmation or backup missing)."""


class TeardownTimeout(KubernetesError):
    """Deleted objects were still present when the teardown's deadline passed."""
