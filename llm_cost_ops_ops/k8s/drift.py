"""Drift: where the live objects differ from the last applied release.

Every object of the release's stored bundle (with the inventory labels the deploy adds) is sent as a
server-side apply dry-run with this project's field manager and `force`: the result is what the
cluster would hold if the release were applied again now. Where that differs from the live object,
something changed it since; an object missing from the cluster is drift too. Workloads an HPA
scales keep their live replica count, as the deploy does. Only field paths are reported, never
values (a Secret's data may have drifted).

Within a deploy's run the check needs none of that: `drift_after_deploy` reads the drift from what
the deploy itself just dry-ran and applied (the same comparison, no second dry-run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..bundles.model import load_documents
from .engine import comparable, hpa_targets
from .foreign import ForeignField, foreign_additions
from .inventory import inventory_selector, labelled, object_key, ref

if TYPE_CHECKING:
    from .client import Kube
    from .ledger import Release
    from .outcomes import DeployResult

MAX_FIELDS = 20


@dataclass(frozen=True)
class DriftedObject:
    ref: str
    fields: list[str]
    missing: bool = False
    foreign: tuple[ForeignField, ...] = ()  # added by other managers: self-heal removes them

    def __str__(self) -> str:
        return f"{self.ref}: missing" if self.missing else f"{self.ref}: {', '.join(self.fields)}"


@dataclass
class DriftReport:
    environment: str
    revision: int
    digest: str
    checked: int = 0
    drifted: list[DriftedObject] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # kinds the cluster does not serve

    @property
    def clean(self) -> bool:
        return not self.drifted


def _item_key(item: Any, index: int) -> str:
    if isinstance(item, dict) and isinstance(item.get("name"), str):
        return item["name"]
    return str(index)


def field_diff(want: Any, live: Any, path: str = "") -> list[str]:
    """Paths where `want` and `live` differ; list items with a `name` are matched by name."""
    if isinstance(want, dict) and isinstance(live, dict):
        out = []
        for key in sorted(set(want) | set(live)):
            out += field_diff(want.get(key), live.get(key), f"{path}.{key}" if path else str(key))
        return out
    if isinstance(want, list) and isinstance(live, list):
        keyed_want = {_item_key(item, i): item for i, item in enumerate(want)}
        keyed_live = {_item_key(item, i): item for i, item in enumerate(live)}
        if len(keyed_want) != len(want) or len(keyed_live) != len(live):
            return [] if want == live else [path]
        out = []
        for key in list(keyed_want) + [k for k in keyed_live if k not in keyed_want]:
            out += field_diff(keyed_want.get(key), keyed_live.get(key), f"{path}[{key}]")
        return out
    return [] if want == live else [path]


def detect_drift(kube: Kube, environment: str, namespace: str, release: Release) -> DriftReport:
    """Compare the live objects with `release`'s bundle through server-side dry-runs.
    Raises ApiError (a rejected dry-run, an unreachable cluster)."""
    report = DriftReport(environment, release.revision, release.digest)
    bodies = [labelled(body, environment) for body in load_documents(release.bundle)]
    scaled = hpa_targets(bodies)
    live: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    served = []
    for api_version, kind in sorted({(b["apiVersion"], b["kind"]) for b in bodies}):
        if kube.resource(api_version, kind) is None:
            report.skipped.append(f"{api_version} {kind}")
            continue
        served.append((api_version, kind))
        if kind == "Namespace":  # read by name: a cluster-wide list would see other environments'
            for body in bodies:
                if body["kind"] == "Namespace":
                    found = kube.get(api_version, kind, body["metadata"]["name"])
                    if found is not None:
                        found.update(apiVersion=api_version, kind=kind)
                        live[object_key(found)] = found
            continue
        for item in kube.list(api_version, kind, namespace, inventory_selector(environment)):
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
            live[object_key(item)] = item
    for body in bodies:
        if (body["apiVersion"], body["kind"]) not in served:
            continue
        report.checked += 1
        current = live.get(object_key(body))
        if current is None:
            report.drifted.append(DriftedObject(ref(body), [], missing=True))
            continue
        if (body["kind"], body["metadata"]["name"]) in scaled and "replicas" in (current.get("spec") or {}):
            body = {**body, "spec": {**body.get("spec", {}), "replicas": current["spec"]["replicas"]}}
        _compare(report, body, kube.apply(body, dry_run=True, force=True), current)
    return report


def drift_after_deploy(
    kube: Kube, environment: str, release: Release, result: DeployResult
) -> DriftReport | None:
    """The drift of `release` as the deploy that produced `result` left it, from that deploy's own
    dry-runs and apply responses, without a request (discovery answers are the connection's).

    A no-op deploy's plan is exactly the drift: each object's dry-run against its live state. An
    object the deploy wrote is as its apply returned it, so only other managers' additions remain.
    None when the deploy did not observe every object of the release that the cluster serves (a
    dry run, an adoption, another bundle): then `detect_drift` is the judge.
    """
    if result.dry_run or result.digest != release.digest or not result.observed:
        return None
    report = DriftReport(environment, release.revision, release.digest)
    not_served: set[str] = set()
    for body in (labelled(body, environment) for body in load_documents(release.bundle)):
        seen = result.observed.get(object_key(body))
        if seen is None:
            if kube.resource(body["apiVersion"], body["kind"]) is not None:
                return None
            not_served.add(f"{body['apiVersion']} {body['kind']}")
            continue
        report.checked += 1
        _compare(report, seen.sent, seen.wanted, seen.live)
    report.skipped = sorted(not_served)
    return report


def _compare(
    report: DriftReport, body: dict[str, Any], wanted: dict[str, Any], current: dict[str, Any]
) -> None:
    """Add `body`'s object to `report` when `wanted` (what applying it would leave) differs from
    `current`, or when other managers added fields inside what the bundle defines."""
    fields = field_diff(comparable(wanted), comparable(current))
    # The dry-run keeps what other managers own: their additions are read from managedFields.
    foreign = foreign_additions(body, current)
    fields += [f"{f.display} (added by {f.manager})" for f in foreign]
    if fields:
        shown = fields[:MAX_FIELDS] + (
            [f"… {len(fields) - MAX_FIELDS} more"] if len(fields) > MAX_FIELDS else []
        )
        report.drifted.append(DriftedObject(ref(body), shown, foreign=tuple(foreign)))
