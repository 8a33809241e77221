"""Which pods can reach which, from the bundle's NetworkPolicies, and the flows the platform needs.

The pods are the bundle's workloads, the migration Job's pods (k8s/migration_job.py), and stand-ins
for what lives outside: the ingress controller (`ingress-nginx`), cluster DNS (`kube-system`,
`k8s-app=kube-dns`), an unlabelled pod of the bundle's namespace and one of another namespace.
Namespaces carry the one label Kubernetes sets, `kubernetes.io/metadata.name`, plus those a
bundled Namespace declares. A flow is open when
the source's egress and the destination's ingress both allow it (a pod no policy of a direction
selects is open in that direction; pods outside the bundle are judged only by the bundle's side).
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .model import ManifestObject, RenderedBundle
from .platform import INGRESS_NAMESPACE, MIGRATION_POD_LABELS, NAMESPACE_NAME_LABEL
from .roles import pod_labels
from .selectors import selector_matches

DNS_NAMESPACE, OTHER_NAMESPACE = "kube-system", "some-other-namespace"
_PRIVATE = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


@dataclass(frozen=True)
class Pod:
    """A pod of the matrix: who it is, where, its labels and its container ports (name -> number)."""

    name: str
    namespace: str
    labels: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)
    in_bundle: bool = True


def _ports(obj: ManifestObject) -> dict[str, int]:
    return {
        str(p.get("name") or p.get("containerPort")): int(p.get("containerPort", 0))
        for path, c in obj.containers()
        if "initContainers" not in path
        for p in c.get("ports") or []
    }


def pods_of(bundle: RenderedBundle) -> list[Pod]:
    """The bundle's pods, then the migration pods and the stand-ins for pods outside the bundle."""
    pods = [Pod(o.ref, o.namespace, pod_labels(o), _ports(o)) for o in bundle.objects if o.pod_template()]
    # The migration Job runs in the namespace most of the bundle lives in.
    counts = Counter(o.namespace for o in bundle.objects if o.namespace)
    namespace = counts.most_common(1)[0][0] if counts else ""
    return [
        *pods,
        Pod("migration Job pods", namespace, dict(MIGRATION_POD_LABELS)),
        Pod("ingress controller", INGRESS_NAMESPACE, {"app.kubernetes.io/name": "ingress-nginx"}, {}, False),
        Pod("cluster DNS", DNS_NAMESPACE, {"k8s-app": "kube-dns"}, {"dns": 53}, False),
        Pod("any other pod of the namespace", namespace, {}, {}, False),
        Pod("a pod of another namespace", OTHER_NAMESPACE, {}, {}, False),
    ]


def namespace_labels(bundle: RenderedBundle) -> dict[str, dict[str, str]]:
    """Every namespace the matrix knows and its labels."""
    known: dict[str, dict[str, str]] = {
        n: {} for n in (*bundle.namespaces(), INGRESS_NAMESPACE, DNS_NAMESPACE, OTHER_NAMESPACE)
    }
    for obj in bundle.of_kind("Namespace"):
        known[obj.name] = dict(obj.labels)
    return {name: {**labels, NAMESPACE_NAME_LABEL: name} for name, labels in known.items()}


def _types(spec: dict[str, Any]) -> set[str]:
    return set(spec.get("policyTypes") or (["Ingress", "Egress"] if "egress" in spec else ["Ingress"]))


class Reachability:
    """The bundle's NetworkPolicies, asked whether a flow (source, destination, port) is open."""

    def __init__(self, bundle: RenderedBundle):
        self.namespaces = namespace_labels(bundle)
        self.pods = pods_of(bundle)
        self.policies = [(p, p.body.get("spec") or {}) for p in bundle.of_kind("NetworkPolicy")]

    def selects(self, policy: ManifestObject, spec: dict[str, Any], pod: Pod) -> bool:
        return pod.namespace == policy.namespace and selector_matches(spec.get("podSelector"), pod.labels)

    def peer_namespaces(self, policy: ManifestObject, peer: dict[str, Any]) -> list[str]:
        if "namespaceSelector" not in peer:
            return [policy.namespace]
        return [
            n for n, labels in self.namespaces.items() if selector_matches(peer["namespaceSelector"], labels)
        ]

    def peer_matches(self, policy: ManifestObject, peer: dict[str, Any], pod: Pod) -> bool:
        if "ipBlock" in peer:  # pod addresses are private: a block over them (no except) admits pods
            block = ipaddress.ip_network(peer["ipBlock"].get("cidr", ""), strict=False)
            return not peer["ipBlock"].get("except") and any(block.overlaps(net) for net in _PRIVATE)
        if pod.namespace not in self.peer_namespaces(policy, peer):
            return False
        return "podSelector" not in peer or selector_matches(peer["podSelector"], pod.labels)

    @staticmethod
    def _port_matches(entry: dict[str, Any], dst: Pod, port: int, protocol: str) -> bool:
        if entry.get("protocol", "TCP") != protocol:
            return False
        wanted = entry.get("port")
        if wanted is None:
            return True
        if isinstance(wanted, str):
            return dst.ports.get(wanted) == port
        return wanted <= port <= int(entry.get("endPort", wanted))

    def _side_allows(
        self, direction: str, owner: Pod, other: Pod, dst: Pod, port: int, protocol: str
    ) -> bool:
        key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        selecting = [(p, s) for p, s in self.policies if direction in _types(s) and self.selects(p, s, owner)]
        if not selecting:
            return True
        return any(
            (not rule.get(peers_key) or any(self.peer_matches(p, peer, other) for peer in rule[peers_key]))
            and (
                not rule.get("ports")
                or any(self._port_matches(e, dst, port, protocol) for e in rule["ports"])
            )
            for p, s in selecting
            for rule in s.get(key) or []
        )

    def ingress_allows(self, src: Pod, dst: Pod, port: int, protocol: str = "TCP") -> bool:
        """True when dst's own ingress policies let src open `port` (whatever src's egress says)."""
        return not dst.in_bundle or self._side_allows("Ingress", dst, src, dst, port, protocol)

    def allows(self, src: Pod, dst: Pod, port: int, protocol: str = "TCP") -> bool:
        """True when src's egress and dst's ingress both let src open `port` on dst."""
        egress = not src.in_bundle or self._side_allows("Egress", src, dst, dst, port, protocol)
        ingress = not dst.in_bundle or self._side_allows("Ingress", dst, src, dst, port, protocol)
        return egress and ingress


def matrix_table(bundle: RenderedBundle) -> str:
    """Markdown: a row per source pod, a column per destination; a cell lists the open ports."""
    reach = Reachability(bundle)
    sources = reach.pods
    destinations = [p for p in reach.pods if p.ports]
    rows = ["| from \\ to | " + " | ".join(d.name for d in destinations) + " |"]
    rows.append("|---" * (len(destinations) + 1) + "|")
    for src in sources:
        cells = []
        for dst in destinations:
            protocol = "UDP" if dst.namespace == DNS_NAMESPACE else "TCP"
            open_ports = [
                f"{n}/{p}"
                for n, p in dst.ports.items()
                if src is not dst and reach.allows(src, dst, p, protocol)
            ]
            cells.append(", ".join(open_ports) or "—")
        rows.append(f"| {src.name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)
