"""Field ownership for server-side apply: per-manager `metadata.managedFields` entries,
conflicts between managers, and removal of fields a manager stopped applying."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from .field_paths import (
    Path,
    format_path,
    from_fields_v1,
    is_item_key,
    owned_paths,
    remove_at,
    scoped,
    to_fields_v1,
    value_at,
)
from .merge_keys import find_item, item_identity, list_key


class ApplyConflict(Exception):
    """Fields in the applied configuration are owned by other managers with other values."""

    def __init__(self, conflicts: list[tuple[str, str]]):
        super().__init__(f"{len(conflicts)} conflicts")
        self.conflicts = conflicts


@dataclass
class ManagedEntry:
    manager: str
    operation: str
    api_version: str
    time: str
    subresource: str = ""
    paths: set[Path] = field(default_factory=set)


def without_nulls(value: object) -> object:
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


def merge_applied(live: object, config: object) -> object:
    """`config` laid over `live`: maps merge, keyed lists merge by key, the rest is replaced."""
    if not (isinstance(live, dict) and isinstance(config, dict)):
        return copy.deepcopy(config)
    result = copy.deepcopy(live)
    for key, value in config.items():
        current = result.get(key)
        key_fields = list_key(key, value) if isinstance(value, list) else None
        if isinstance(value, dict) and isinstance(current, dict):
            result[key] = merge_applied(current, value)
        elif key_fields and isinstance(current, list) and list_key(key, current):
            merged = []
            for item in value:
                index = find_item(current, item_identity(item, key_fields))
                merged.append(merge_applied(current[index], item) if index is not None else item)
            merged += [i for i in current if find_item(value, item_identity(i, key_fields)) is None]
            result[key] = copy.deepcopy(merged)
        else:
            result[key] = copy.deepcopy(value)
    return result


def parse_managed(obj: dict) -> list[ManagedEntry]:
    entries = []
    for raw in (obj.get("metadata") or {}).get("managedFields") or []:
        entry = ManagedEntry(
            manager=raw.get("manager", ""),
            operation=raw.get("operation", "Update"),
            api_version=raw.get("apiVersion", ""),
            time=raw.get("time", ""),
            subresource=raw.get("subresource", ""),
            paths=from_fields_v1(raw.get("fieldsV1") or {}),
        )
        entries.append(entry)
    return entries


def render_managed(entries: list[ManagedEntry]) -> list[dict]:
    rendered = []
    for entry in entries:
        if not entry.paths:
            continue
        raw = {
            "manager": entry.manager,
            "operation": entry.operation,
            "apiVersion": entry.api_version,
            "time": entry.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(entry.paths),
        }
        if entry.subresource:
            raw["subresource"] = entry.subresource
        rendered.append(raw)
    return rendered


def _entry(entries, manager, operation, subresource, api_version, now) -> ManagedEntry:
    for entry in entries:
        if (entry.manager, entry.operation, entry.subresource) == (manager, operation, subresource):
            entry.api_version, entry.time = api_version, now
            return entry
    entry = ManagedEntry(manager, operation, api_version, now, subresource)
    entries.append(entry)
    return entry


def apply(
    live: dict,
    config: dict,
    entries: list[ManagedEntry],
    *,
    manager: str,
    force: bool,
    scope: str,
    api_version: str,
    now: str,
) -> dict:
    """Merge an applied configuration into `live` and update `entries` in place.

    Raises ApplyConflict when another manager owns an applied field with a different value
    and `force` is false. Fields this manager applied before and no longer applies are removed
    unless someone else still owns them.
    """
    config = scoped(without_nulls(config), scope)  # type: ignore[arg-type]
    applied = owned_paths(config, scope)
    conflicts = []
    for entry in entries:
        if entry.manager == manager:
            continue
        for path in sorted(entry.paths & applied):
            if not path[-1].startswith("k:") and value_at(live, path) != value_at(config, path):
                conflicts.append((entry.manager, path))
    if conflicts and not force:
        raise ApplyConflict([(manager_, format_path(path)) for manager_, path in conflicts])
    for entry in entries:
        entry.paths -= {path for owner, path in conflicts if owner == entry.manager}

    merged = merge_applied(live, config)
    subresource = "status" if scope == "status" else ""
    mine = _entry(entries, manager, "Apply", subresource, api_version, now)
    others = set().union(*(entry.paths for entry in entries if entry is not mine))
    # Shortest first: dropping a list item takes its fields with it.
    for path in sorted(mine.paths - applied, key=len):
        if not any(other[: len(path)] == path for other in others) and not is_item_key(path):
            remove_at(merged, path)  # type: ignore[arg-type]
    mine.paths = applied
    entries[:] = [entry for entry in entries if entry.paths]
    return merged  # type: ignore[return-value]


def record_update(
    old: dict | None,
    new: dict,
    entries: list[ManagedEntry],
    *,
    manager: str,
    scope: str,
    api_version: str,
    now: str,
) -> None:
    """Give `manager` the fields an Update operation changed, taking them from everyone else."""
    before, after = owned_paths(old, scope), owned_paths(new, scope)
    changed = after - before
    changed |= {
        path
        for path in after & before
        if not path[-1].startswith("k:") and value_at(old, path) != value_at(new, path)
    }
    removed = before - after
    if not changed and not removed:
        return
    for entry in entries:
        entry.paths = {
            path for path in entry.paths - changed if not any(path[: len(gone)] == gone for gone in removed)
        }
    if changed:
        subresource = "status" if scope == "status" else ""
        mine = _entry(entries, manager, "Update", subresource, api_version, now)
        mine.paths |= changed
    entries[:] = [entry for entry in entries if entry.paths]
