"""A real Kubernetes control plane for the test suite, started from the binaries `binaries.py` builds.

`ControlPlane().start()` runs, on free loopback ports and under one temporary directory:
- etcd;
- kube-apiserver with TLS, client-certificate authentication, Node+RBAC authorization,
  ServiceAccount token signing, the default admission plugins, and an audit log (Metadata level,
  one event per request) that tests read through `audit()` to count the requests they made;
- kube-controller-manager with every default controller (namespace, garbage collector, Deployment,
  ReplicaSet, StatefulSet, Job, PV binder, ...); a default StorageClass and a pool of
  PersistentVolumes (topped up by `ensure_volumes`) let the real PV binder bind every claim;
- kube-scheduler;
- KWOK managing three fake nodes, with the stages in `stages/` deciding the lives of pods, and
  serving pod logs (ClusterLogs) and port-forwards (ClusterPortForward) as a kubelet would.

The tests talk to it as user `llm-cost-ops-ops` (bound to cluster-admin through RBAC) with the
kubeconfig at `kubeconfig`; setup uses a `system:masters` admin kubeconfig. `stop()` stops every
process it started (by process group) and removes every file, also on failure and on SIGTERM/SIGINT
(tests/processes.py).
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests import processes
from tests.control_plane import binaries
from tests.control_plane.pki import KeyPair, Pki

STAGES = Path(__file__).resolve().parent / "stages"
TEST_USER = "llm-cost-ops-ops"
NODES = ("kwok-node-0", "kwok-node-1", "kwok-node-2")
VOLUME_POOL = 60
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata"}],
}
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class AuditEvent:
    """One request as the API server's audit log recorded it."""

    verb: str
    uri: str
    user: str
    resource: str
    namespace: str
    name: str
    code: int
    received: str

    @property
    def dry_run(self) -> bool:
        return "dryRun=All" in self.uri

    @property
    def is_write(self) -> bool:
        return self.verb in WRITE_VERBS and not self.dry_run

    @classmethod
    def parse(cls, line: str) -> AuditEvent:
        event = json.loads(line)
        ref = event.get("objectRef") or {}
        return cls(
            verb=event.get("verb", ""),
            uri=event.get("requestURI", ""),
            user=(event.get("user") or {}).get("username", ""),
            resource=ref.get("resource", "") + (f"/{ref['subresource']}" if ref.get("subresource") else ""),
            namespace=ref.get("namespace", ""),
            name=ref.get("name", ""),
            code=int((event.get("responseStatus") or {}).get("code") or 0),
            received=event.get("requestReceivedTimestamp", ""),
        )


class ControlPlane:
    """etcd, kube-apiserver, kube-controller-manager, kube-scheduler and KWOK for one test session."""

    def __init__(self) -> None:
        self.root = processes.owned_tempdir("llm-cost-ops-ops-cp-")
        self.ports = {name: free_port() for name in ("etcd", "peer", "apiserver", "kcm", "scheduler", "kwok")}
        self.server = f"https://127.0.0.1:{self.ports['apiserver']}"
        self.audit_log = self.root / "audit.log"
        self.kubeconfig = self.root / "kubeconfig"
        self.admin_kubeconfig = self.root / "admin.kubeconfig"
        self.logs_dir = self.root / "pod-logs"
        self._procs: dict[str, Any] = {}
        self._pki = Pki(self.root / "pki")

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> ControlPlane:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        pki = self._pki
        serving = pki.issue(
            "apiserver",
            "kube-apiserver",
            hosts=("127.0.0.1", "localhost", "10.96.0.1", "kubernetes", "kubernetes.default.svc"),
            server=True,
        )
        kubelet_client = pki.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client")
        kwok_serving = pki.issue("kwok-serving", "kwok", hosts=("127.0.0.1", "localhost"), server=True)
        sa = pki.service_account_key()
        self._write_kubeconfig(
            self.admin_kubeconfig, pki.issue("admin", "admin", organizations=("system:masters",))
        )
        self._write_kubeconfig(self.kubeconfig, pki.issue("user", TEST_USER))
        kcm_config = self._write_kubeconfig(
            self.root / "kcm.kubeconfig", pki.issue("kcm", "system:kube-controller-manager")
        )
        scheduler_config = self._write_kubeconfig(
            self.root / "scheduler.kubeconfig", pki.issue("scheduler", "system:kube-scheduler")
        )
        kwok_config = self._write_kubeconfig(
            self.root / "kwok.kubeconfig", pki.issue("kwok", "kwok", organizations=("system:masters",))
        )
        policy = self.root / "audit-policy.yaml"
        policy.write_text(yaml.safe_dump(AUDIT_POLICY))

        etcd_url = f"http://127.0.0.1:{self.ports['etcd']}"
        peer_url = f"http://127.0.0.1:{self.ports['peer']}"
        self._spawn(
            "etcd",
            "--name=default",
            f"--data-dir={self.root / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=default={peer_url}",
            "--listen-metrics-urls=",
            "--unsafe-no-fsync",
            "--log-level=warn",
        )
        self._wait_http(f"{etcd_url}/health", "etcd", tls=False)
        self._spawn(
            "kube-apiserver",
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.ports['apiserver']}",
            f"--cert-dir={self.root / 'apiserver-certs'}",
            f"--tls-cert-file={serving.cert}",
            f"--tls-private-key-file={serving.key}",
            f"--client-ca-file={pki.ca}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={sa.cert}",
            f"--service-account-signing-key-file={sa.key}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            f"--audit-policy-file={policy}",
            f"--audit-log-path={self.audit_log}",
            "--audit-log-format=json",
            "--audit-log-mode=blocking",
            "--audit-log-maxbackup=0",
            f"--kubelet-client-certificate={kubelet_client.cert}",
            f"--kubelet-client-key={kubelet_client.key}",
            "--kubelet-preferred-address-types=InternalIP",
            "--profiling=false",
            "--v=0",
        )
        self._wait_http(f"{self.server}/readyz", "kube-apiserver")
        self._spawn(
            "kube-controller-manager",
            f"--kubeconfig={kcm_config}",
            f"--authentication-kubeconfig={kcm_config}",
            f"--authorization-kubeconfig={kcm_config}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.ports['kcm']}",
            "--leader-elect=false",
            f"--service-account-private-key-file={sa.key}",
            f"--root-ca-file={pki.ca}",
            "--use-service-account-credentials=true",
            "--controllers=*",
            "--profiling=false",
        )
        self._spawn(
            "kube-scheduler",
            f"--kubeconfig={scheduler_config}",
            f"--authentication-kubeconfig={scheduler_config}",
            f"--authorization-kubeconfig={scheduler_config}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.ports['scheduler']}",
            "--leader-elect=false",
            "--profiling=false",
        )
        self._wait_http(f"https://127.0.0.1:{self.ports['kcm']}/healthz", "kube-controller-manager")
        self._wait_http(f"https://127.0.0.1:{self.ports['scheduler']}/healthz", "kube-scheduler")
        self.logs_dir.mkdir()
        runtime = self.root / "kwok-runtime.yaml"
        runtime.write_text(yaml.safe_dump_all(self._kwok_runtime()))
        self._spawn(
            "kwok",
            f"--kubeconfig={kwok_config}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--config={STAGES / 'nodes.yaml'}",
            f"--config={STAGES / 'pods.yaml'}",
            f"--config={runtime}",
            "--node-ip=127.0.0.1",
            f"--node-port={self.ports['kwok']}",
            f"--server-address=127.0.0.1:{self.ports['kwok']}",
            f"--tls-cert-file={kwok_serving.cert}",
            f"--tls-private-key-file={kwok_serving.key}",
            "--cidr=10.244.0.1/16",
        )
        self._seed()

    def stop(self) -> None:
        """Stop every process (newest first) and remove every file this control plane made."""
        for name in reversed(list(self._procs)):
            processes.stop_process(self._procs.pop(name))
        processes.remove_tempdir(self.root)

    def pids(self) -> list[int]:
        return [process.pid for process in self._procs.values()]

    # --- what tests use -------------------------------------------------------------------------

    def api_client(self, *, admin: bool = False) -> Any:
        from kubernetes import client, config

        configuration = client.Configuration()
        loader = config.kube_config.KubeConfigLoader(
            yaml.safe_load((self.admin_kubeconfig if admin else self.kubeconfig).read_text()),
        )
        loader.load_and_set(configuration)
        return client.ApiClient(configuration)

    def audit_mark(self) -> int:
        """A position in the audit log: `audit(since=mark)` returns only later requests."""
        return self.audit_log.stat().st_size if self.audit_log.exists() else 0

    def audit(self, since: int = 0, *, user: str = TEST_USER) -> list[AuditEvent]:
        """Requests `user` made after `since`, in the order the API server answered them."""
        with self.audit_log.open("rb") as log:
            log.seek(since)
            data = log.read()
        events = [AuditEvent.parse(line) for line in data.decode().splitlines() if line.strip()]
        return [event for event in events if not user or event.user == user]

    def pod_log_file(self, text: str) -> Path:
        """Make `text` the log every KWOK pod serves (`kubectl logs`)."""
        path = self.logs_dir / "pods.log"
        # KWOK serves the file as the kubelet serves a container log: in the CRI logging format.
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())
        path.write_text("".join(f"{stamp} stdout F {line}\n" for line in text.splitlines()))
        return path

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.root / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # --- internals ------------------------------------------------------------------------------

    def _spawn(self, name: str, *args: str) -> None:
        log = (self.root / f"{name}.log").open("ab")
        try:
            self._procs[name] = processes.start_process([str(binaries.binary(name)), *args], log=log)
        finally:
            log.close()

    def _write_kubeconfig(self, path: Path, pair: KeyPair) -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "control-plane",
                    "cluster": {"server": self.server, "certificate-authority": str(self._pki.ca)},
                }
            ],
            "users": [
                {"name": "user", "user": {"client-certificate": str(pair.cert), "client-key": str(pair.key)}}
            ],
            "contexts": [{"name": "control-plane", "context": {"cluster": "control-plane", "user": "user"}}],
            "current-context": "control-plane",
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self._pki.ca))
        admin = self._pki.root
        context.load_cert_chain(admin / "admin.crt", admin / "admin.key")
        context.check_hostname = False
        return context

    def _wait_http(self, url: str, name: str, *, tls: bool = True, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        context = None
        if tls:
            context = self._ssl_context()
            context.verify_mode = ssl.CERT_NONE  # kcm and scheduler serve self-signed certificates
        last = ""
        while time.monotonic() < deadline:
            process = self._procs.get(name)
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.log_tail(name)}")
            try:
                with urllib.request.urlopen(url, context=context, timeout=5) as answer:
                    if answer.status == 200:
                        return
            except OSError as error:
                last = str(error)
            time.sleep(0.2)
        raise RuntimeError(
            f"{name} not ready at {url} after {timeout:.0f} s ({last}):\n{self.log_tail(name)}"
        )

    def _kwok_runtime(self) -> list[dict[str, Any]]:
        """KWOK's kubelet features: every container's log, and port-forwards to loopback targets."""
        return [
            {
                "apiVersion": "kwok.x-k8s.io/v1alpha1",
                "kind": "ClusterLogs",
                "metadata": {"name": "all-pods"},
                "spec": {
                    "logs": [{"containers": [], "logsFile": str(self.logs_dir / "pods.log"), "follow": False}]
                },
            }
        ]

    def _seed(self) -> None:
        from kubernetes import client

        with self.api_client(admin=True) as api:
            core, rbac, storage = (
                client.CoreV1Api(api),
                client.RbacAuthorizationV1Api(api),
                client.StorageV1Api(api),
            )
            rbac.create_cluster_role_binding(
                {
                    "metadata": {"name": "llm-cost-ops-ops-test"},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": "cluster-admin",
                    },
                    "subjects": [
                        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": TEST_USER}
                    ],
                }
            )
            storage.create_storage_class(
                {
                    "metadata": {
                        "name": "standard",
                        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
                    },
                    "provisioner": "kubernetes.io/no-provisioner",
                    "reclaimPolicy": "Retain",
                    "volumeBindingMode": "Immediate",
                }
            )
            for name in NODES:
                core.create_node(
                    {
                        "metadata": {
                            "name": name,
                            "annotations": {
                                "kwok.x-k8s.io/node": "fake",
                                "node.alpha.kubernetes.io/ttl": "0",
                            },
                            "labels": {
                                "kubernetes.io/hostname": name,
                                "kubernetes.io/os": "linux",
                                "type": "kwok",
                            },
                        }
                    }
                )
            self.ensure_volumes(core)
            self._wait_until(lambda: self._ready_nodes(core) == len(NODES), "KWOK nodes Ready", "kwok")
            self._wait_until(
                lambda: self._has_default_service_account(core),
                "default ServiceAccount",
                "kube-controller-manager",
            )

    def ensure_volumes(self, core: Any = None, available: int = VOLUME_POOL) -> None:
        """Keep `available` unbound PersistentVolumes (1Ti, class `standard`) for claims to bind to."""
        if core is None:
            from kubernetes import client

            with self.api_client(admin=True) as api:
                return self.ensure_volumes(client.CoreV1Api(api), available)
        volumes = core.list_persistent_volume().items
        free = sum(1 for v in volumes if (v.status.phase or "Available") in ("Available", "Pending"))
        for index in range(len(volumes), len(volumes) + max(0, available - free)):
            core.create_persistent_volume(
                {
                    "metadata": {"name": f"pool-{index:04d}"},
                    "spec": {
                        "capacity": {"storage": "1Ti"},
                        "accessModes": ["ReadWriteOnce", "ReadWriteMany"],
                        "persistentVolumeReclaimPolicy": "Retain",
                        "storageClassName": "standard",
                        "hostPath": {"path": str(self.root / "volumes" / f"pool-{index:04d}")},
                    },
                }
            )
        return None

    @staticmethod
    def _ready_nodes(core: Any) -> int:
        ready = 0
        for node in core.list_node().items:
            conditions = {c.type: c.status for c in (node.status.conditions or [])}
            ready += conditions.get("Ready") == "True"
        return ready

    @staticmethod
    def _has_default_service_account(core: Any) -> bool:
        return any(
            sa.metadata.name == "default" for sa in core.list_namespaced_service_account("default").items
        )

    def _wait_until(self, predicate: Any, what: str, component: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            process = self._procs.get(component)
            if process is not None and process.poll() is not None:
                raise RuntimeError(
                    f"{component} exited with {process.returncode}:\n{self.log_tail(component)}"
                )
            if predicate():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{what} not seen after {timeout:.0f} s:\n{self.log_tail(component)}")


@contextlib.contextmanager
def running_control_plane() -> Iterator[ControlPlane]:
    plane = ControlPlane().start()
    try:
        yield plane
    finally:
        plane.stop()
