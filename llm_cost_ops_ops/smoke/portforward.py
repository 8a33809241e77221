"""Reaching a Service from outside the cluster: a Kubernetes port-forward to one ready pod behind it.

`Forwarder` is the small interface the smoke suite needs; `KubernetesForwarder` implements it with
`kubernetes.stream.portforward` (as `kubectl port-forward svc/<name>` does: pick a ready pod behind
the Service, resolve the target port, open one stream per local connection).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ..k8s.errors import ApiError
from .relay import TcpRelay
from .results import SmokeError

if TYPE_CHECKING:
    from ..k8s.client import Kube


class Forwarder(Protocol):
    def forward(self, namespace: str, service: str, port: int) -> tuple[str, int]:
        """A local (host, port) that reaches `service`'s `port`. Raises SmokeError."""
        ...

    def close(self) -> None: ...


def _ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    conditions = status.get("conditions") or []
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
    )


def _container_port(pod: dict[str, Any], target: int | str) -> int:
    if isinstance(target, int) or str(target).isdigit():
        return int(target)
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target:
                return int(port["containerPort"])
    raise SmokeError(f"pod {pod['metadata']['name']} has no container port named {target!r}")


class KubernetesForwarder:
    """Port-forwards through the cluster connection; close() stops every listener it opened."""

    def __init__(self, kube: Kube):
        self.kube = kube
        self._relays: list[TcpRelay] = []

    def _target(self, namespace: str, service: str, port: int) -> tuple[str, int]:
        svc = self.kube.get("v1", "Service", service, namespace)
        if svc is None:
            raise SmokeError(f"cannot port-forward: Service {namespace}/{service} does not exist")
        spec = svc.get("spec") or {}
        entry = next((p for p in spec.get("ports") or [] if p.get("port") == port), None)
        if entry is None:
            raise SmokeError(f"cannot port-forward: Service {namespace}/{service} has no port {port}")
        selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items()))
        pods = sorted(
            (p for p in self.kube.list("v1", "Pod", namespace, selector) if _ready(p)),
            key=lambda p: p["metadata"]["name"],
        )
        if not pods:
            raise SmokeError(f"cannot port-forward: no ready pod behind Service {namespace}/{service}")
        return pods[0]["metadata"]["name"], _container_port(pods[0], entry.get("targetPort", port))

    def forward(self, namespace: str, service: str, port: int) -> tuple[str, int]:
        from kubernetes import client
        from kubernetes.stream import portforward

        try:
            pod, target = self._target(namespace, service, port)
        except ApiError as exc:
            raise SmokeError(f"cannot port-forward to Service {namespace}/{service}: {exc}") from None
        core = client.CoreV1Api(self.kube.api_client)

        def connect() -> Any:
            stream = portforward(
                core.connect_get_namespaced_pod_portforward, pod, namespace, ports=str(target)
            )
            return stream.socket(target)

        # One probe before any check uses it: a port-forward the API server refuses is one clear
        # error naming its status, not a "no answer" from every check behind the relay.
        try:
            connect().close()
        except Exception as exc:
            status = getattr(exc, "status", None) or getattr(exc, "status_code", None)
            detail = getattr(exc, "reason", None) or str(exc).splitlines()[0][:200]
            raise SmokeError(
                f"port-forward to pod {namespace}/{pod} port {target} (Service {service}) failed: "
                f"the API server answered {status or 'no status'}: {detail}"
            ) from None
        relay = TcpRelay(connect).start()
        self._relays.append(relay)
        return "127.0.0.1", relay.port

    def close(self) -> None:
        for relay in self._relays:
            relay.close()
        self._relays.clear()
