"""Migrations in the cluster: one Job per deploy running the application image's own migration
command (`sqlx migrate run` by default), with the environment's ConfigMap and Secret via envFrom.

The Job's name ends with the Dagster run id, so a retried step of the same run follows the Job it
already started instead of starting a second one. backoffLimit 0: a failed migration is never
re-run blindly. activeDeadlineSeconds stops it in the cluster, ttlSecondsAfterFinished removes it
a day later (its log stays readable until then). The pod is labelled `app.kubernetes.io/name:
llm-cost-ops`, `app.kubernetes.io/component: migrations`, so the database's NetworkPolicy admits
it, and runs under the restricted Pod Security profile like the API.

The wait polls with an injected clock and sleeper, streams the pod's log to `log` line by line,
and fails fast when the container cannot start (image pull errors, a missing Secret).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..bundles.platform import MIGRATION_POD_LABELS
from .errors import ApiError, MigrationJobFailed, MigrationJobTimeout
from .health import FAIL_FAST, Patience, pod_failures
from .inventory import MANAGED_BY, MANAGED_BY_LABEL

if TYPE_CHECKING:
    from .client import Kube

NAME_PREFIX = "llm-cost-ops-migrate-"
CONTAINER = "migrate"
RUN_ID_ANNOTATION = "llm-cost-ops-ops/dagster-run-id"
POD_LABELS = MIGRATION_POD_LABELS
DEFAULT_COMMAND = ("sqlx", "migrate", "run")
LOG_WINDOW = 64  # lines a poll reads (more only when all of them are new)
LOG_READ_LINES = 100_000  # the most one poll reads


@dataclass(frozen=True)
class MigrationJobSpec:
    namespace: str
    image: str
    command: tuple[str, ...] = DEFAULT_COMMAND
    args: tuple[str, ...] = ()
    config_map: str = "llm-cost-ops-config"
    secret: str = "llm-cost-ops-secrets"
    service_account: str = "llm-cost-ops"
    active_deadline_seconds: int = 900
    ttl_seconds_after_finished: int = 86_400
    resources: Mapping[str, Mapping[str, str]] = field(
        default_factory=lambda: {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        }
    )
    labels: Mapping[str, str] = field(default_factory=dict)  # extra labels for the Job and its pod


@dataclass(frozen=True)
class JobTiming:
    deadline_seconds: float | None = None  # None: the Job's activeDeadlineSeconds plus a minute
    poll_seconds: float = 2.0
    log_lines: int = 20  # how many last lines a failure carries
    # The one judge's patience for the pod (health.pod_failures): by default the first image pull
    # error or a container that cannot be created ends the Job, as it ends a deploy's rollout.
    patience: Patience = FAIL_FAST


@dataclass(frozen=True)
class MigrationJobResult:
    name: str
    namespace: str
    pod: str
    log_lines: tuple[str, ...]
    duration_seconds: float


def migration_job_name(run_id: str) -> str:
    """`llm-cost-ops-migrate-<run id>`, a valid name of at most 63 characters (the job-name label).

    Raises ValueError for a run id with no letter or digit.
    """
    suffix = re.sub(r"[^a-z0-9-]+", "-", run_id.lower()).strip("-")
    if not suffix:
        raise ValueError(f"run id {run_id!r} has no letter or digit to name a Job with")
    return (NAME_PREFIX + suffix)[:63].rstrip("-")


def migration_job_manifest(spec: MigrationJobSpec, run_id: str) -> dict[str, Any]:
    """The Job for one run's migrations."""
    labels = {**spec.labels, **POD_LABELS, MANAGED_BY_LABEL: MANAGED_BY}
    annotations = {RUN_ID_ANNOTATION: run_id}
    container = {
        "name": CONTAINER,
        "image": spec.image,
        "command": list(spec.command),
        "args": list(spec.args),
        "envFrom": [{"configMapRef": {"name": spec.config_map}}, {"secretRef": {"name": spec.secret}}],
        "resources": {kind: dict(values) for kind, values in spec.resources.items()},
        # The last log lines end up in the pod status even if the log itself is gone.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    pod_spec = {
        "restartPolicy": "Never",
        "serviceAccountName": spec.service_account,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "runAsGroup": 1000,
            "fsGroup": 1000,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": migration_job_name(run_id),
            "namespace": spec.namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": {
            "backoffLimit": 0,
            "completions": 1,
            "parallelism": 1,
            "activeDeadlineSeconds": spec.active_deadline_seconds,
            "ttlSecondsAfterFinished": spec.ttl_seconds_after_finished,
            "template": {"metadata": {"labels": labels, "annotations": annotations}, "spec": pod_spec},
        },
    }


def _stamped(line: str) -> tuple[tuple[str, str], str]:
    """(sortable time, text) of a line read with timestamps=True ('2026-12-02T05:00:00.1234Z text')."""
    stamp, _, text = line.partition(" ")
    seconds, _, fraction = stamp.rstrip("Z").partition(".")
    return (seconds, fraction.ljust(9, "0")), text


class _LogStream:
    """Emits each new line of the Job's pod log once, across polls.

    A poll reads only the newest LOG_WINDOW lines, with their timestamps, and emits those newer
    than the last line seen; only when every line of the window is new (more were written since
    the last poll than it holds) does it read a larger tail, up to LOG_READ_LINES.
    """

    def __init__(self, kube: Kube, namespace: str, log: Callable[[str], None]):
        self.kube, self.namespace, self.log = kube, namespace, log
        self.pod = ""
        self.lines: list[str] = []
        self.seen: tuple[str, str] = ("", "")  # the time of the newest line emitted
        self.seen_at_time = 0  # lines emitted with exactly that time
        self.error = ""  # why the last read failed (best effort: a verdict never waits for a log)

    def last(self, pod: dict[str, Any] | None, count: int) -> str:
        lines = _tail(self.lines, pod, count)
        if lines:
            return " | ".join(lines)
        return f"(logs could not be read: {self.error})" if self.error else "(none)"

    def _fresh(self, text: str) -> list[tuple[tuple[str, str], str]]:
        entries = [_stamped(line) for line in text.splitlines()]
        fresh = [e for e in entries if e[0] > self.seen]
        same = [e for e in entries if e[0] == self.seen][self.seen_at_time :]
        return same + fresh

    def read(self, pod: dict[str, Any]) -> None:
        name = pod["metadata"]["name"]
        if (pod.get("status") or {}).get("phase") in (None, "Pending"):
            return  # no container has started: there is no log yet
        if name != self.pod:
            self.pod, self.lines, self.seen, self.seen_at_time = name, [], ("", ""), 0
        window = LOG_WINDOW
        while True:
            read = self.kube.read_pod_log(self.namespace, name, CONTAINER, window, timestamps=True)
            if read.error:
                if read.error != self.error:
                    self.log(f"{name}: logs could not be read: {read.error}")
                self.error = read.error
                return
            fresh = self._fresh(read.text)
            whole = len(read.text.splitlines())
            if len(fresh) < whole or whole < window or window >= LOG_READ_LINES:
                break
            window = min(window * 10, LOG_READ_LINES)  # the window may have skipped lines
        self.error = ""
        for stamp, line in fresh:
            self.log(f"{name}: {line}")
            self.lines.append(line)
            self.seen_at_time = self.seen_at_time + 1 if stamp == self.seen else 1
            self.seen = stamp


def _condition(job: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return dict(condition)
    return None


def _container_status(pod: dict[str, Any] | None) -> dict[str, Any]:
    for status in ((pod or {}).get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == CONTAINER:
            return dict(status)
    return {}


def _terminated(pod: dict[str, Any] | None) -> dict[str, Any]:
    status = _container_status(pod)
    state = status.get("state") or {}
    return dict(state.get("terminated") or (status.get("lastState") or {}).get("terminated") or {})


def _newest_pod(kube: Kube, namespace: str, job: dict[str, Any]) -> dict[str, Any] | None:
    uid = job["metadata"].get("uid", "")
    pods = kube.list("v1", "Pod", namespace, f"batch.kubernetes.io/controller-uid={uid}") if uid else []
    return max(pods, key=lambda p: p["metadata"].get("creationTimestamp") or "", default=None)


def _tail(lines: list[str], pod: dict[str, Any] | None, count: int) -> tuple[str, ...]:
    if not lines:  # the log is gone: fall back to the termination message (FallbackToLogsOnError)
        lines = str(_terminated(pod).get("message") or "").splitlines()
    return tuple(lines[-count:])


def run_migration_job(
    kube: Kube,
    spec: MigrationJobSpec,
    run_id: str,
    *,
    timing: JobTiming | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleeper: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] = lambda _: None,
) -> MigrationJobResult:
    """Create (or, on a retry of the same run, follow) the migration Job and wait for it.

    Raises MigrationJobFailed (the Job failed: exit code and last log lines; or its container
    cannot start, after which the Job is deleted so it cannot run later unwatched),
    MigrationJobTimeout (still running at the deadline; left to its activeDeadlineSeconds), or
    ApiError.
    """
    timing = timing or JobTiming()
    body = migration_job_manifest(spec, run_id)
    name, namespace = body["metadata"]["name"], spec.namespace
    where = f"Job {namespace}/{name}"
    deadline = timing.deadline_seconds or spec.active_deadline_seconds + 60.0
    started = clock()
    try:
        kube.create(body)
        log(f"created {where}: {' '.join(spec.command + spec.args)} in {spec.image}")
    except ApiError as exc:
        if exc.status != 409:
            raise
        log(f"{where} already exists for run {run_id}; following it")
    stream = _LogStream(kube, namespace, log)
    while True:
        job = kube.get("batch/v1", "Job", name, namespace)
        if job is None:
            raise MigrationJobFailed(f"{where} disappeared while running (deleted by someone?)", job=name)
        pod = _newest_pod(kube, namespace, job)
        if pod is not None:
            stream.read(pod)
        if _condition(job, "Complete"):
            return MigrationJobResult(name, namespace, stream.pod, tuple(stream.lines), clock() - started)
        failed = _condition(job, "Failed")
        if failed:
            ended = _terminated(pod)
            code = ended.get("exitCode")
            last = _tail(stream.lines, pod, timing.log_lines)
            exited = f"exit code {code} ({ended.get('reason', '?')})" if code is not None else "no exit code"
            raise MigrationJobFailed(
                f"{where} failed: {failed.get('reason', 'Failed')}: {failed.get('message', '')}; "
                f"container {CONTAINER}: {exited}; last log lines: {stream.last(pod, timing.log_lines)}",
                job=name,
                exit_code=code,
                last_lines=last,
            )
        problems = pod_failures([pod], time.time(), timing.patience) if pod is not None else []
        if problems:
            problem = problems[0]
            kube.delete("batch/v1", "Job", name, namespace)
            message = ((_container_status(pod).get("state") or {}).get("waiting") or {}).get("message", "")
            raise MigrationJobFailed(
                f"{where}: container {problem.container} of pod {problem.pod} cannot start: "
                f"{problem.reason} {message}".strip()
                + "; the Job was deleted, nothing ran",
                job=name,
            )
        if clock() - started >= deadline:
            last = _tail(stream.lines, pod, timing.log_lines)
            raise MigrationJobTimeout(
                f"{where} still running after {deadline:g}s (activeDeadlineSeconds "
                f"{spec.active_deadline_seconds} ends it in the cluster); last log lines: "
                f"{stream.last(pod, timing.log_lines)}",
                job=name,
                last_lines=last,
            )
        sleeper(timing.poll_seconds)
