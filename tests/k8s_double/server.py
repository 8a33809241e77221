"""`ApiServer`: a Kubernetes API server test double on 127.0.0.1 that the official client talks
to unchanged. State is in memory; faults and validation errors are injected by the test."""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import yaml

from . import crds, removal, status
from .catalog import Catalog, ResourceType
from .dispatch import Dispatcher
from .faults import FaultPlan, Injector, RecordedRequest
from .store import Store
from .subresources import PodLogs
from .transport import HttpServer
from .verbs import Resources, Target, WriteOptions

SEEDED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ApiServer:
    """An in-memory API server. Use as a context manager, or call start() and stop()."""

    def __init__(
        self,
        *,
        version: str = "1.30",
        token: str | None = None,
        clock: Callable[[], datetime] | None = None,
        watch_history: int = 10_000,
    ):
        """`version` is what /version reports; with `token` every request needs that bearer
        token; `watch_history` is how many events a watch can resume across before 410 Gone."""
        self.version = version
        self.token = token
        self.catalog = Catalog()
        self.store = Store(history=watch_history)
        self.faults = FaultPlan()
        self.logs = PodLogs()
        self.resources = Resources(
            self.store, self.catalog, clock or (lambda: datetime.now(UTC)), self.faults.check_rules
        )
        self._requests: list[RecordedRequest] = []
        self._requests_lock = threading.Lock()
        self._http: HttpServer | None = None
        self._thread: threading.Thread | None = None
        for name in SEEDED_NAMESPACES:
            self.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    # Lifecycle

    def start(self) -> ApiServer:
        dispatcher = Dispatcher(
            self.catalog, self.resources, self.logs, self.faults, self.version, self.token
        )
        self._http = HttpServer(dispatcher, self._record)
        dispatcher.address = f"127.0.0.1:{self._http.server_address[1]}"
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._http is None:
            return
        self.store.close()
        self._http.shutdown()
        self._http.cut_connections()
        self._http.server_close()
        self._http = None

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._http is None:
            raise RuntimeError("ApiServer is not running; call start() first")
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    # Client configuration

    def client_configuration(self):
        """A kubernetes.client.Configuration pointing at this server."""
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        if self.token:
            configuration.api_key = {"BearerToken": self.token}
            configuration.api_key_prefix = {"BearerToken": "Bearer"}
        return configuration

    def kubeconfig(
        self, path: str | Path, *, namespace: str = "default", other_url: str | None = None
    ) -> Path:
        """Write a kubeconfig whose current context `double` points here. The second context,
        `other`, points at `other_url` (e.g. another ApiServer) or at a port nobody listens on."""
        path = Path(path)
        other = other_url or f"http://127.0.0.1:{_unused_port()}"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "double", "cluster": {"server": self.url}},
                {"name": "other", "cluster": {"server": other}},
            ],
            "users": [
                {"name": "double", "user": {"token": self.token or "double-token"}},
                {"name": "other", "user": {"token": "other-token"}},
            ],
            "contexts": [
                {
                    "name": "double",
                    "context": {"cluster": "double", "user": "double", "namespace": namespace},
                },
                {"name": "other", "context": {"cluster": "other", "user": "other", "namespace": namespace}},
            ],
            "current-context": "double",
            "preferences": {},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    # State, without HTTP: not recorded, never faulted

    @property
    def resource_version(self) -> int:
        """The latest resourceVersion handed out."""
        return self.store.revision

    def resource_type(self, api_version: str, kind: str) -> ResourceType:
        rtype = self.catalog.by_kind(api_version, kind)
        if rtype is None:
            raise KeyError(f"{api_version} {kind} is not served; install its CRD first")
        return rtype

    def install_crd(
        self,
        group: str,
        version: str,
        kind: str,
        plural: str,
        namespaced: bool = True,
        *,
        status: bool = True,
    ) -> dict:
        """Create a CustomResourceDefinition so the server serves `group/version` `plural`."""
        definition = crds.definition(group, version, kind, plural, namespaced=namespaced, status=status)
        return self.seed(definition)

    def seed(self, obj: dict, *, manager: str = "test") -> dict:
        """Create `obj`, or replace it if it exists, with full server semantics."""
        rtype = self.resource_type(obj["apiVersion"], obj["kind"])
        meta = obj.get("metadata") or {}
        target = Target(rtype, meta.get("namespace", "") if rtype.namespaced else "", meta["name"])
        options = WriteOptions(manager=manager, manager_given=True)
        with self.store.lock:
            old = self.store.get(rtype, target.namespace, target.name)
            return self.resources.commit(target, old, obj, options, "main")

    def write_status(self, obj: dict, new_status: dict, *, manager: str) -> dict:
        """Replace `obj`'s status through the status subresource semantics."""
        rtype = self.resource_type(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        target = Target(rtype, meta.get("namespace", ""), meta["name"], "status")
        with self.store.lock:
            old = self.resources.get(target)
            scope = "status" if rtype.has_status else "main"
            options = WriteOptions(manager=manager, manager_given=True)
            return self.resources.commit(target, old, {**old, "status": new_status}, options, scope)

    def read(self, api_version: str, kind: str, name: str, namespace: str = "") -> dict | None:
        return self.store.get(self.resource_type(api_version, kind), namespace, name)

    def objects(self, api_version: str, kind: str, namespace: str | None = None) -> list[dict]:
        return self.store.list_objects(self.resource_type(api_version, kind), namespace)

    def remove(self, api_version: str, kind: str, name: str, namespace: str = "") -> None:
        """Delete like a DELETE request would, dependents included; missing objects are fine."""
        target = Target(self.resource_type(api_version, kind), namespace, name)
        try:
            removal.delete(self.resources, target, WriteOptions(manager="test"), {}, b"")
        except status.ApiError as error:
            if error.code != 404:
                raise

    def set_pod_log(
        self, namespace: str, name: str, text: str, container: str | None = None, *, previous: bool = False
    ) -> None:
        """The text `GET .../pods/<name>/log` returns (for `container`, or any container)."""
        self.logs.set(namespace, name, text, container, previous)

    # Faults and request accounting

    def inject(self, injector: Injector) -> None:
        """Call `injector(request)` before each resource request; a status code or ApiError it
        returns becomes the response instead of handling the request."""
        self.faults.inject(injector)

    def fail_next(
        self,
        count: int = 1,
        code: int = 503,
        *,
        writes_only: bool = False,
        after_write: bool = False,
        message: str | None = None,
    ) -> None:
        """Fail the next `count` resource requests with `code`. With `after_write` the request is
        handled first and only its response is lost, as in a timeout after commit."""
        self.faults.fail_next(count, code, writes_only=writes_only, after_write=after_write, message=message)

    def fail_ratio(
        self,
        ratio: float,
        codes: Iterable[int] = (500, 503, 429),
        *,
        seed: int | None = None,
        writes_only: bool = False,
    ) -> None:
        """Fail about `ratio` of resource requests with one of `codes`, reproducibly per `seed`."""
        self.faults.fail_ratio(ratio, codes, writes_only, seed)

    def reject(self, predicate: Callable[[dict], bool], message: str, *, field: str = "metadata") -> None:
        """Answer 422 Invalid (dry-run included) for any written object matching `predicate`."""
        self.faults.reject(predicate, message, field)

    def clear_faults(self) -> None:
        self.faults.clear()

    def _record(self, request: RecordedRequest) -> None:
        with self._requests_lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, discovery included, as (method, path, query)."""
        with self._requests_lock:
            return list(self._requests)

    @property
    def counts(self) -> Counter:
        """Requests received per HTTP method."""
        return Counter(request.method for request in self.requests)

    def reset_counters(self) -> None:
        with self._requests_lock:
            self._requests.clear()
