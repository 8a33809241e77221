"""The official `kubernetes` client behind one retry policy, with the verbs the engine uses.

Transient failures (429, 500, 502, 503, 504, connection resets, timeouts) are retried with
exponential backoff up to a bound; every other error fails at once with the server's message.
Sleeping is injected so tests never wait.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import tenacity
import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.resource import Resource

from .. import process_env
from .discovery import Discovery
from .errors import TRANSIENT_STATUS, ApiError, NotConfigured

T = TypeVar("T")
JsonItems = list[dict[str, Any]]  # named here: inside Kube, `list` is the method
FIELD_MANAGER = "llm-cost-ops-ops"
JsonPatch = list[dict[str, Any]]  # RFC 6902 operations (named here: `Kube.list` shadows `list` in the class)
_TRANSIENT_IO = (
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.TimeoutError,
    urllib3.exceptions.MaxRetryError,
    ConnectionResetError,
    TimeoutError,
)


# Connect and read timeouts of a log read: a log is best effort and must never hold up a verdict.
LOG_READ_TIMEOUT = (3.0, 5.0)


@dataclass(frozen=True)
class PodLog:
    text: str
    error: str = ""  # why the log could not be read ('' when it was)

    def tail(self, lines: int) -> str:
        """The last `lines` lines joined with ' | ', or why there are none."""
        if self.error:
            return f"(logs could not be read: {self.error})"
        kept = self.text.strip().splitlines()[-lines:]
        return " | ".join(kept) if kept else "(no log)"


def _kubeconfig_files(kubeconfig: str) -> tuple[list[Path], str]:
    """The kubeconfig files a connection reads (kubectl's order), and where that choice came from."""
    if kubeconfig:
        return [Path(kubeconfig).expanduser()], "the kubernetes resource's kubeconfig"
    listed = process_env.kubeconfig_paths()
    if listed:
        return [Path(p).expanduser() for p in listed], "KUBECONFIG"
    return [Path("~/.kube/config").expanduser()], "the default, KUBECONFIG unset"


def cluster_configured(kubeconfig: str = "", in_cluster: bool = False) -> bool:
    """Whether a cluster was asked for: the in-cluster account, a kubeconfig named by the resource
    or KUBECONFIG (readable or not: connecting then fails naming it), or ~/.kube/config present.

    False means "no cluster here at all", for checks that report themselves not evaluated; it never
    turns a deploy into a plan."""
    if in_cluster or process_env.in_kubernetes_pod():
        return True
    if kubeconfig or process_env.is_set("KUBECONFIG"):
        return True
    return Path("~/.kube/config").expanduser().is_file()


def load_api_client(
    kubeconfig: str = "", context: str = "", in_cluster: bool = False
) -> k8s_client.ApiClient:
    """An ApiClient for the kubeconfig's current or named context, or the in-cluster account.

    Raises NotConfigured with one line naming the kubeconfig (and where it came from) or the
    context that was tried, and what to set; never the kubeconfig's content.
    """
    configuration = k8s_client.Configuration()
    if in_cluster:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
        except k8s_config.ConfigException as exc:
            raise NotConfigured(
                f"cannot use the in-cluster service account ({exc}): run inside a pod with a service "
                "account, or set the kubernetes resource's in_cluster to false and KUBECONFIG"
            ) from None
    else:
        files, source = _kubeconfig_files(kubeconfig)
        for path in files:
            if not path.is_file() or not os.access(path, os.R_OK):
                state = "cannot be read" if path.exists() else "does not exist"
                raise NotConfigured(
                    f"kubeconfig {path} ({source}) {state}: set KUBECONFIG to a readable kubeconfig "
                    "whose context reaches the cluster"
                )
        joined = os.pathsep.join(str(p) for p in files)
        where = f"kubeconfig {joined} ({source})"
        try:
            contexts, current = k8s_config.list_kube_config_contexts(config_file=joined)
        except (k8s_config.ConfigException, ValueError, TypeError, AttributeError) as exc:
            # The parser's message may quote the file, tokens included: only its kind is named.
            raise NotConfigured(
                f"{where} is not a valid kubeconfig ({type(exc).__name__}): set KUBECONFIG to a valid one"
            ) from None
        names = sorted(str(c.get("name")) for c in contexts or [])
        if context and context not in names:
            raise NotConfigured(
                f"{where} has no context {context!r} (it has {', '.join(names) or 'none'}): set "
                "deploy.kube_context in environments.yaml to one of them, or KUBECONFIG to a kubeconfig "
                f"holding {context!r}"
            )
        if not context and not current:
            raise NotConfigured(
                f"{where} has no current-context: set deploy.kube_context in environments.yaml "
                f"(contexts: {', '.join(names) or 'none'})"
            )
        tried = context or str(current.get("name"))
        try:
            k8s_config.load_kube_config(
                config_file=joined,
                context=tried,
                client_configuration=configuration,
                persist_config=False,
            )
        except (k8s_config.ConfigException, FileNotFoundError, ValueError) as exc:
            raise NotConfigured(
                f"{where}, context {tried!r}, cannot be used ({str(exc).splitlines()[0][:200]}): fix "
                "that context or set deploy.kube_context to another"
            ) from None
    # Retries are Kube.call's (bounded, injected sleeper, Retry-After honoured): urllib3's own
    # would sleep for real and multiply the bound.
    configuration.retries = False
    return k8s_client.ApiClient(configuration)


def _server_message(exc: ApiException) -> tuple[str, str]:
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        body = {}
    return str(body.get("message") or exc.reason or "no message"), str(body.get("reason") or "")


class _WaitRetryAfter(tenacity.wait.wait_base):
    """Exponential backoff with jitter, but never shorter than the server's Retry-After (capped)."""

    def __init__(self, initial: float, maximum: float):
        # Jitter in proportion to the first delay (tenacity would add up to a whole second).
        self.backoff = tenacity.wait_exponential_jitter(multiplier=initial, max=maximum, jitter=initial)
        self.maximum = maximum

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        delay = self.backoff(retry_state)
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        header = (getattr(exc, "headers", None) or {}).get("Retry-After") if exc is not None else None
        if header and str(header).isdigit():
            delay = max(delay, min(float(header), self.maximum))
        return delay


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ApiException):
        return exc.status in TRANSIENT_STATUS
    return isinstance(exc, _TRANSIENT_IO)


class _NoDiscovery:
    """DynamicClient's discoverer slot, left empty: its own would ask for /version and /apis when
    the client is made. Resources come from Discovery instead."""

    def __init__(self, client: DynamicClient, cache_file: str | None) -> None:
        del client, cache_file


class Kube:
    """A cluster connection: discovery, get/list/apply/delete with retries, pod logs."""

    def __init__(
        self,
        api_client: k8s_client.ApiClient,
        *,
        field_manager: str = FIELD_MANAGER,
        sleeper: Callable[[float], None] = time.sleep,
        max_attempts: int = 8,
        backoff_initial: float = 0.2,
        backoff_max: float = 5.0,
        discovery: Discovery | None = None,
    ):
        self.api_client = api_client
        self.field_manager = field_manager
        self._retrying = tenacity.Retrying(
            sleep=sleeper,
            stop=tenacity.stop_after_attempt(max_attempts),
            wait=_WaitRetryAfter(backoff_initial, backoff_max),
            retry=tenacity.retry_if_exception(_is_transient),
            reraise=True,
        )
        # Shared by the run's connections to one API server (the Kubernetes resource passes it);
        # a connection made alone discovers for itself, once.
        self.discovery = discovery or Discovery()
        self._dynamic: DynamicClient | None = None

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one API call under the retry policy; raise ApiError naming `what` on failure."""
        try:
            return self._retrying(fn)
        except ApiException as exc:
            message, reason = _server_message(exc)
            raise ApiError(f"{what}: {message}", exc.status or 0, reason) from None
        except _TRANSIENT_IO as exc:
            raise ApiError(f"{what}: connection failed after retries: {exc}") from None

    @property
    def dynamic(self) -> DynamicClient:
        """The client's verbs (get, list, apply, ...) on resources `resource` found; it discovers
        nothing itself."""
        if self._dynamic is None:
            self._dynamic = DynamicClient(self.api_client, discoverer=_NoDiscovery)
        return self._dynamic

    def resource(self, api_version: str, kind: str) -> Resource | None:
        """The API resource serving a kind, or None when the cluster does not serve it (see
        discovery.py: one request per group version per run)."""
        return self.discovery.resource(self, api_version, kind)

    def _res(self, api_version: str, kind: str) -> Resource:
        found = self.resource(api_version, kind)
        if found is None:
            raise ApiError(f"{api_version} {kind} is not served by this cluster", 404, "NotFound")
        return found

    def get(self, api_version: str, kind: str, name: str, namespace: str = "") -> dict[str, Any] | None:
        res = self._res(api_version, kind)
        try:
            got = self.call(
                f"get {kind} {namespace}/{name}",
                lambda: self.dynamic.get(res, name=name, namespace=namespace or None),
            )
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return got.to_dict()

    def list(
        self, api_version: str, kind: str, namespace: str = "", label_selector: str = ""
    ) -> list[dict[str, Any]]:
        res = self._res(api_version, kind)
        ns = namespace if res.namespaced else None
        got = self.call(
            f"list {kind} in {namespace or 'cluster'}",
            lambda: self.dynamic.get(res, namespace=ns, label_selector=label_selector or None),
        )
        return [item for item in got.to_dict().get("items") or []]

    def apply(self, body: dict[str, Any], *, dry_run: bool = False, force: bool = False) -> dict[str, Any]:
        """Server-side apply one object with this project's field manager."""
        res = self._res(body["apiVersion"], body["kind"])
        meta = body["metadata"]
        namespace = meta.get("namespace") if res.namespaced else None
        got = self.call(
            f"{'dry-run ' if dry_run else ''}apply {body['kind']} {namespace or '-'}/{meta['name']}",
            lambda: self.dynamic.server_side_apply(
                res,
                body=body,
                namespace=namespace,
                field_manager=self.field_manager,
                force_conflicts=force or None,
                dry_run="All" if dry_run else None,
            ),
        )
        return got.to_dict()

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._write("create", body)

    def replace(self, body: dict[str, Any]) -> dict[str, Any]:
        """Replace with the body's resourceVersion: a concurrent writer makes this fail with 409."""
        return self._write("replace", body)

    def json_patch(
        self, api_version: str, kind: str, name: str, namespace: str, ops: JsonPatch
    ) -> dict[str, Any]:
        """An RFC 6902 JSON patch (removes what server-side apply cannot: another manager's fields)."""
        res = self._res(api_version, kind)
        got = self.call(
            f"patch {kind} {namespace or '-'}/{name}",
            lambda: self.dynamic.patch(
                res,
                body=ops,
                name=name,
                namespace=namespace if res.namespaced else None,
                content_type="application/json-patch+json",
                field_manager=self.field_manager,
            ),
        )
        return got.to_dict()

    def _write(self, verb: str, body: dict[str, Any]) -> dict[str, Any]:
        res = self._res(body["apiVersion"], body["kind"])
        namespace = body["metadata"].get("namespace") if res.namespaced else None
        method = getattr(self.dynamic, verb)
        got = self.call(
            f"{verb} {body['kind']} {namespace or '-'}/{body['metadata']['name']}",
            lambda: method(res, body=body, namespace=namespace, field_manager=self.field_manager),
        )
        return got.to_dict()

    def delete(
        self, api_version: str, kind: str, name: str, namespace: str = "", *, dry_run: bool = False
    ) -> bool:
        """Delete one object (background propagation); False when it was already gone."""
        res = self._res(api_version, kind)
        try:
            self.call(
                f"delete {kind} {namespace or '-'}/{name}",
                lambda: self.dynamic.delete(
                    res,
                    name=name,
                    namespace=namespace if res.namespaced else None,
                    propagation_policy="Background",
                    dry_run="All" if dry_run else None,
                ),
            )
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def read_pod_log(
        self, namespace: str, pod: str, container: str = "", tail_lines: int = 20, *, timestamps: bool = False
    ) -> PodLog:
        """The last lines of a container's log, best effort: one short attempt, never retried.

        A log is evidence for a verdict the pod's status already gives, so a kubelet that cannot
        serve it (the API server answers 500, 502, ...) must not delay that verdict; the reason it
        could not be read is returned instead of raised.
        """
        core = k8s_client.CoreV1Api(self.api_client)
        kwargs: dict[str, Any] = {
            "tail_lines": tail_lines,
            "timestamps": timestamps,  # each line prefixed with its RFC 3339 time (nanoseconds)
            "_preload_content": False,  # client 36 otherwise returns the bytes' repr as a string
            "_request_timeout": LOG_READ_TIMEOUT,
        }
        if container:
            kwargs["container"] = container
        try:
            response = core.read_namespaced_pod_log(pod, namespace, **kwargs)
            return PodLog(response.data.decode(errors="replace"))
        except ApiException as exc:
            message, _ = _server_message(exc)
            return PodLog("", f"the API server answered {exc.status}: {message}")
        except (*_TRANSIENT_IO, urllib3.exceptions.HTTPError, OSError) as exc:
            return PodLog("", f"connection failed: {type(exc).__name__}")

    def pod_log(self, namespace: str, pod: str, container: str = "", tail_lines: int = 20) -> str:
        """The last lines of a container's log ('' when it cannot be read; see read_pod_log)."""
        return self.read_pod_log(namespace, pod, container, tail_lines).text

    def list_json(
        self,
        api_version: str,
        plural: str,
        namespace: str,
        label_selector: str = "",
        timeout_seconds: float | None = 10.0,
    ) -> JsonItems:
        """One list request by REST path, without discovery or model conversion: the server's JSON
        items (apiVersion and kind filled in). For frequent polls such as the rollout sensor."""
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        query = [("labelSelector", label_selector)] if label_selector else []
        response = self.call(
            f"list {plural} in {namespace}",
            lambda: self.api_client.call_api(
                f"{base}/namespaces/{namespace}/{plural}",
                "GET",
                query_params=query,
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
                _preload_content=False,
                _return_http_data_only=True,
                _request_timeout=timeout_seconds,
            ),
        )
        body = json.loads(response.data)
        kind = str(body.get("kind", "")).removesuffix("List")
        items = body.get("items") or []
        for item in items:
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return items
