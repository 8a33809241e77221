"""The NetworkPolicy rules of the `references` check, judged on the reachability matrix.

- `network-peer`: a policy that applies to no pod, or a peer that selects no namespace or no pod
  (including a selector a transform such as `commonLabels` extended with this bundle's own labels,
  so it no longer matches the ingress controller or cluster DNS);
- `network-flows`: the flows the platform needs are open (ingress controller -> API, scraper ->
  API metrics and the database exporter, API and migration pods -> database, every pod -> DNS), and
  nothing else reaches the database's PostgreSQL port.

With `database.external: true` the database's pods are left out of the bundle (external_database.py);
a peer selecting them (the base policies' egress to postgres) then selects nothing by design.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..environments import EnvironmentSpec
from .external_database import left_out_database
from .findings import Finding
from .model import RenderedBundle
from .reachability import DNS_NAMESPACE, Pod, Reachability
from .roles import RoleLookup
from .selectors import is_empty_selector
from .workload_refs import CHECK, finding


def network_peers_select(bundle: RenderedBundle, spec: EnvironmentSpec) -> Iterator[Finding]:
    """Every policy applies to some pod; every peer selects some namespace and some pod."""
    reach = Reachability(bundle)
    bundle_namespaces = set(bundle.namespaces())
    # The tree's own pods: the migration Job's pods are this project's, they carry no label of the tree.
    rendered = {o.ref for o in bundle.objects}
    bundle_pods = [p for p in reach.pods if p.in_bundle and p.name in rendered]
    for policy, body in reach.policies:
        selector = body.get("podSelector")
        if not is_empty_selector(selector) and not any(reach.selects(policy, body, p) for p in reach.pods):
            yield finding(
                "network-peer", bundle, policy, "spec.podSelector", "applies to no pod of the bundle"
            )
        for key, peers_key in (("ingress", "from"), ("egress", "to")):
            for i, rule in enumerate(body.get(key) or []):
                for j, peer in enumerate(rule.get(peers_key) or []):
                    if "ipBlock" in peer:
                        continue
                    field = f"spec.{key}[{i}].{peers_key}[{j}]"
                    namespaces = reach.peer_namespaces(policy, peer)
                    if not namespaces:
                        yield finding(
                            "network-peer", bundle, policy, f"{field}.namespaceSelector",
                            f"selects no namespace ({peer['namespaceSelector']}); Kubernetes labels "
                            "namespaces kubernetes.io/metadata.name=<name>",
                        )  # fmt: skip
                        continue
                    if "podSelector" not in peer:
                        continue
                    matched = [p for p in reach.pods if reach.peer_matches(policy, peer, p)]
                    # An environment on an external database has no database pods to select.
                    left_out = left_out_database(spec, (peer["podSelector"] or {}).get("matchLabels") or {})
                    if not matched and set(namespaces) <= bundle_namespaces and not left_out:
                        yield finding(
                            "network-peer", bundle, policy, f"{field}.podSelector",
                            f"selects no pod in {', '.join(namespaces)}",
                        )  # fmt: skip
                    elif not matched and not set(namespaces) & bundle_namespaces:
                        own = _bundle_only_labels(peer["podSelector"], bundle_pods)
                        if own:
                            yield finding(
                                "network-peer", bundle, policy, f"{field}.podSelector",
                                f"requires {own}, a label every pod of this bundle carries (a commonLabels-"
                                f"style transform?), so it selects no pod in {', '.join(namespaces)}",
                            )  # fmt: skip


def _bundle_only_labels(selector: dict, pods: list[Pod]) -> str:
    pairs = (selector or {}).get("matchLabels") or {}
    shared = [f"{k}={v}" for k, v in pairs.items() if pods and all(p.labels.get(k) == v for p in pods)]
    return ", ".join(shared)


def _flow(bundle: RenderedBundle, src: Pod, dst: Pod, message: str) -> Finding:
    """A flow finding names the bundle's pod whose policies decide it (the destination first)."""
    pod = dst if dst.in_bundle else src
    field = "spec.template.metadata.labels"
    return Finding(CHECK, "network-flows", bundle.environment, pod.name, field, message)


def platform_flows(bundle: RenderedBundle, spec: EnvironmentSpec) -> Iterator[Finding]:
    """The flows the platform needs are open; only the API and migrations reach PostgreSQL, and
    only the ingress controller and the scraper reach the API."""
    reach = Reachability(bundle)
    roles = RoleLookup(bundle, spec)
    by_ref = {p.name: p for p in reach.pods}
    api, database, scraper = (roles.find(r).obj for r in ("api", "database", "prometheus"))
    api_pod, db_pod = (by_ref.get(o.ref) if o else None for o in (api, database))
    scraper_pod = by_ref.get(scraper.ref) if scraper else None
    ingress, migrations, dns = (
        by_ref["ingress controller"],
        by_ref["migration Job pods"],
        by_ref["cluster DNS"],
    )
    needed: list[tuple[Pod | None, Pod | None, str, int]] = []
    if api_pod:
        needed += [(ingress, api_pod, "http", api_pod.ports.get("http", 8080))]
        needed += (
            [(scraper_pod, api_pod, "metrics", api_pod.ports.get("metrics", 9090))] if scraper_pod else []
        )
    if db_pod:
        postgres = db_pod.ports.get("postgresql", 5432)
        needed += [(api_pod, db_pod, "postgresql", postgres), (migrations, db_pod, "postgresql", postgres)]
        if scraper_pod and "metrics" in db_pod.ports:
            needed += [(scraper_pod, db_pod, "exporter metrics", db_pod.ports["metrics"])]
    for src, dst, what, port in needed:
        if src and dst and not reach.allows(src, dst, port):
            message = f"{src.name} cannot reach {dst.name} on {what} port {port}: the platform needs it"
            yield _flow(bundle, src, dst, message)
    for pod in [p for p in reach.pods if p.in_bundle or p is migrations]:
        if pod.namespace != DNS_NAMESPACE and not reach.allows(pod, dns, 53, "UDP"):
            yield _flow(bundle, pod, dns, f"{pod.name} cannot reach cluster DNS (UDP 53)")
    if db_pod:
        postgres = db_pod.ports.get("postgresql", 5432)
        allowed = {id(api_pod), id(migrations), id(db_pod)}
        for pod in reach.pods:  # the database's own policies must refuse, whatever others' egress
            if id(pod) not in allowed and reach.ingress_allows(pod, db_pod, postgres):
                message = (
                    f"{pod.name} can reach {db_pod.name} on PostgreSQL port {postgres}; "
                    "only the API and migrations may"
                )
                yield _flow(bundle, pod, db_pod, message)
    if api_pod:
        allowed = {id(ingress), id(scraper_pod), id(api_pod)}
        for pod in reach.pods:
            for name, port in (api_pod.ports or {"http": 8080, "metrics": 9090}).items():
                if id(pod) not in allowed and reach.ingress_allows(pod, api_pod, port):
                    message = (
                        f"{pod.name} can reach {api_pod.name} on {name} port {port}; only the ingress "
                        "controller and the scraper may"
                    )
                    yield _flow(bundle, pod, api_pod, message)
