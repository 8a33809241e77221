"""The `references` check: what the bundle's objects point at exists, and its flows connect.

A bundle can render and validate and still be dead on arrival: a Service selecting no pod, an
Ingress naming a missing port, a RoleBinding to a missing ServiceAccount, a DSN naming a Service
that is not there, a NetworkPolicy peer selecting nothing. RULES lists the rules in report order;
each reads only the bundle and the environment's spec. A rule that cannot evaluate (an object of
an unexpected shape) yields a `could-not-evaluate` error: the check never passes on what it could
not judge.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import yaml

from ..environments import EnvironmentSpec
from .access_refs import bindings_resolve, config_references_resolve, service_accounts_exist
from .connections import connection_hosts_exist, scrape_configs_select, service_monitors_select
from .dropped import values_not_dropped
from .findings import Finding
from .model import RenderedBundle
from .network_rules import network_peers_select, platform_flows
from .workload_refs import (
    CHECK,
    autoscalers_target_workloads,
    disruption_budgets_can_evict,
    ingress_backends_exist,
    services_select_pods,
)

Rule = Callable[[RenderedBundle, EnvironmentSpec], Iterator[Finding]]

RULES: tuple[Rule, ...] = (
    services_select_pods,
    ingress_backends_exist,
    autoscalers_target_workloads,
    disruption_budgets_can_evict,
    service_accounts_exist,
    bindings_resolve,
    config_references_resolve,
    connection_hosts_exist,
    scrape_configs_select,
    service_monitors_select,
    network_peers_select,
    platform_flows,
    values_not_dropped,
)


def check_references(bundle: RenderedBundle, spec: EnvironmentSpec) -> list[Finding]:
    """Run every rule; a rule that raises on the bundle's content becomes an error finding."""
    findings: list[Finding] = []
    for rule in RULES:
        try:
            findings.extend(rule(bundle, spec))
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, OSError, yaml.YAMLError) as exc:
            message = f"{rule.__name__} could not evaluate the bundle ({type(exc).__name__}: {exc})"
            findings.append(Finding(CHECK, "could-not-evaluate", bundle.environment, "-", "", message))
    return findings
