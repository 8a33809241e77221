"""Connection settings name Services that exist; scrapes and ServiceMonitors select something.

Hosts are read from URLs and DSNs (`scheme://[user@]host[:port]`) in ConfigMap and Secret values
and container env values, from `*_HOST` variables, and from Prometheus scrape configs. A host is
in-cluster when it is a short name, `name.namespace` of a namespace the bundle uses, or
`name.namespace.svc...`; such a host must be a Service of the bundle, with the port named. Other
hosts (public DNS names, IPs, `localhost`) and names under `objects.external` are not checked.

With `database.external: true` the bundle has no database component (external_database.py): a
PostgreSQL DSN is meant for the external database, so one naming an in-cluster host that is no
Service of the bundle (the stock `postgres`) is a warning to point it there, not an error; and a
scrape discovering the database component's pods (the postgres-exporter job) is not required to
find any. In-cluster environments are checked as before.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import ipaddress
import re
from collections.abc import Iterator

import yaml

from ..environments import EnvironmentSpec
from .external_database import left_out_database
from .findings import Finding
from .model import ManifestObject, RenderedBundle
from .selectors import selector_matches
from .workload_refs import finding, workloads

_URL = re.compile(r"\b([a-z][a-z0-9+.-]*)://(?:[^@/\s\"']*@)?([A-Za-z0-9.-]+)(?::(\d+))?", re.IGNORECASE)
_PROMETHEUS_FILES = ("prometheus.yml", "prometheus.yaml")
_POSTGRES_SCHEMES = ("postgres", "postgresql")


def _values(obj: ManifestObject) -> Iterator[tuple[str, str, str]]:
    """(field, key, text) of every configuration value the object carries."""
    for key, value in (obj.body.get("data") or {}).items():
        if obj.kind == "Secret":
            try:
                value = base64.b64decode(str(value)).decode(errors="replace")
            except (binascii.Error, ValueError):
                continue
        yield f"data.{key}", key, str(value)
    for key, value in (obj.body.get("stringData") or {}).items():
        yield f"stringData.{key}", key, str(value)
    for cpath, container in obj.containers():
        for i, var in enumerate(container.get("env") or []):
            if "value" in var:
                yield f"{cpath}.env[{i}].value", str(var.get("name", "")), str(var["value"])


def _hosts(key: str, text: str) -> Iterator[tuple[str, str, int | None]]:
    """(scheme, host, port) of every URL or DSN in the value ("" scheme for a `*_HOST` setting)."""
    for match in _URL.finditer(text):
        yield match.group(1).lower(), match.group(2), int(match.group(3)) if match.group(3) else None
    if key.upper().endswith("_HOST") and "://" not in text:
        host, _, port = text.strip().partition(":")
        yield "", host, int(port) if port.isdigit() else None


def _in_cluster(host: str, bundle: RenderedBundle, namespace: str) -> tuple[str, str] | None:
    """(service, namespace) for an in-cluster Service name, None for anything else."""
    if host == "localhost":
        return None
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    parts = host.split(".")
    if len(parts) == 1:
        return parts[0], namespace
    if (len(parts) >= 3 and parts[2] == "svc") or (len(parts) == 2 and parts[1] in bundle.namespaces()):
        return parts[0], parts[1]
    return None


def _check_host(bundle, spec, obj, field, host: str, port: int | None, scheme: str = "") -> Iterator[Finding]:
    target = _in_cluster(host, bundle, obj.namespace)
    if target is None or host in spec.objects.external or target[0] in spec.objects.external:
        return
    name, namespace = target
    service = next(
        (s for s in bundle.of_kind("Service") if s.name == name and s.namespace == namespace), None
    )
    if service is None and spec.database.external and scheme in _POSTGRES_SCHEMES:
        # The database is outside the bundle: this DSN must be pointed at it (environments.yaml).
        message = (
            f"host {host} names no Service of the bundle; database.external is true for "
            f"{spec.name}: point this DSN at the external database"
        )
        yield dataclasses.replace(finding("connection-host", bundle, obj, field, message), severity="warning")
    elif service is None:
        yield finding("connection-host", bundle, obj, field, f"host {host} names no Service of the bundle")
    elif port is not None and all(
        p.get("port") != port for p in (service.body.get("spec") or {}).get("ports") or []
    ):
        yield finding("connection-host", bundle, obj, field, f"{service.ref} has no port {port}")


def connection_hosts_exist(bundle: RenderedBundle, spec: EnvironmentSpec) -> Iterator[Finding]:
    """Every in-cluster host of a URL, DSN or `*_HOST` setting is a Service of the bundle."""
    for obj in bundle.objects:
        for field, key, text in _values(obj):
            for scheme, host, port in _hosts(key, text):
                yield from _check_host(bundle, spec, obj, field, host, port, scheme)


def _scrape_selects(bundle: RenderedBundle, role: str, namespace: str, selector: str) -> bool:
    wanted = dict(pair.split("=", 1) for pair in selector.split(",") if "=" in pair)
    pool = (
        [w.labels for w in workloads(bundle) if w.namespace == namespace]
        if role == "pod"
        else [s.labels for s in bundle.of_kind("Service") if s.namespace == namespace]
    )
    return any(all(labels.get(k) == v for k, v in wanted.items()) for labels in pool)


def scrape_configs_select(bundle: RenderedBundle, spec: EnvironmentSpec) -> Iterator[Finding]:
    """Prometheus scrape configs: static targets are Services, discovery selects something."""
    for configmap in bundle.of_kind("ConfigMap"):
        for key, text in (configmap.body.get("data") or {}).items():
            if key not in _PROMETHEUS_FILES:
                continue
            config = yaml.safe_load(text) or {}
            for i, job in enumerate(config.get("scrape_configs") or []):
                base = f"data.{key}:scrape_configs[{i}]"
                for j, static in enumerate(job.get("static_configs") or []):
                    for target in static.get("targets") or []:
                        host = str(target).partition(":")[0]
                        found = _check_host(
                            bundle, spec, configmap, f"{base}.static_configs[{j}]", host, None
                        )
                        yield from (dataclasses.replace(f, rule="scrape-target") for f in found)
                for j, sd in enumerate(job.get("kubernetes_sd_configs") or []):
                    yield from _discovery(bundle, spec, configmap, f"{base}.kubernetes_sd_configs[{j}]", sd)


def _discovery(bundle, spec, configmap, field, sd) -> Iterator[Finding]:
    namespaces = sd.get("namespaces") or {}
    names = list(namespaces.get("names") or [])
    if namespaces.get("own_namespace") or not namespaces:
        names.append(configmap.namespace)
    for name in names:
        if name not in bundle.namespaces() and name not in spec.objects.external:
            yield finding(
                "scrape-target",
                bundle,
                configmap,
                f"{field}.namespaces",
                f"namespace {name} is not the bundle's",
            )
    for k, selector in enumerate(sd.get("selectors") or []):
        label = selector.get("label")
        wanted = dict(pair.split("=", 1) for pair in (label or "").split(",") if "=" in pair)
        if label and left_out_database(spec, wanted):
            continue  # the database component is left out of the bundle: nothing to scrape there
        if label and not any(_scrape_selects(bundle, sd.get("role", "pod"), n, label) for n in names):
            yield finding(
                "scrape-target", bundle, configmap, f"{field}.selectors[{k}].label",
                f"selector {label} matches no {sd.get('role', 'pod')} in {', '.join(names)}",
            )  # fmt: skip


def service_monitors_select(bundle: RenderedBundle, spec: EnvironmentSpec) -> Iterator[Finding]:
    """Every ServiceMonitor selects a Service of its namespaces, on a port that Service names."""
    for monitor in bundle.of_kind("ServiceMonitor"):
        body = monitor.body.get("spec") or {}
        scope = body.get("namespaceSelector") or {}
        names = scope.get("matchNames") or [monitor.namespace]
        services = [
            s for s in bundle.of_kind("Service")
            if (scope.get("any") or s.namespace in names) and selector_matches(body.get("selector"), s.labels)
        ]  # fmt: skip
        if not services:
            yield finding(
                "service-monitor",
                bundle,
                monitor,
                "spec.selector",
                f"selects no Service in {', '.join(names)}",
            )
            continue
        ports = {p.get("name") for s in services for p in (s.body.get("spec") or {}).get("ports") or []}
        for i, endpoint in enumerate(body.get("endpoints") or []):
            if "port" in endpoint and endpoint["port"] not in ports:
                yield finding(
                    "service-monitor", bundle, monitor, f"spec.endpoints[{i}].port",
                    f"no selected Service has a port named {endpoint['port']!r}",
                )  # fmt: skip
