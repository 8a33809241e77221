"""REST semantics per verb: create, get, list, replace, patch, server-side apply, delete.

Every write goes through `commit`, which keeps identity fields, applies defaults, validates,
bumps `metadata.generation` only on spec changes, records field ownership, skips no-op writes
and stores nothing on dry-run.
"""

from __future__ import annotations

import copy
import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import yaml

from . import crds, managed_fields, status
from .catalog import Catalog, ResourceType
from .patches import PatchError, json_patch, merge_patch, strategic_merge_patch
from .preparation import prepare
from .selectors import field_matcher, label_matcher
from .store import Store
from .validation import check_decodable, validate

Clock = Callable[[], datetime]
APPLY = "application/apply-patch+yaml"
PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    APPLY,
)


@dataclass(frozen=True)
class Target:
    """Where a request points: a type, and optionally a namespace, a name and a subresource."""

    rtype: ResourceType
    namespace: str = ""
    name: str = ""
    subresource: str = ""


@dataclass(frozen=True)
class WriteOptions:
    dry_run: bool = False
    manager: str = ""
    manager_given: bool = False
    force: bool = False


def timestamp(clock: Clock) -> str:
    return clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _comparable(obj: dict) -> dict:
    clone = copy.deepcopy(obj)
    clone["metadata"].pop("resourceVersion", None)
    for entry in clone["metadata"].get("managedFields") or []:
        entry.pop("time", None)
    return clone


def _load(body: bytes, content_type: str) -> object:
    try:
        if content_type == APPLY:
            return yaml.safe_load(body or b"")
        return json.loads(body or b"null")
    except (ValueError, yaml.YAMLError) as error:
        raise status.bad_request(f"error decoding request body: {error}") from None


class Resources:
    """The API semantics over a Store; `check_rules` raises the 422s tests register."""

    def __init__(self, store: Store, catalog: Catalog, clock: Clock, check_rules: Callable):
        self.store = store
        self.catalog = catalog
        self.clock = clock
        self.check_rules = check_rules

    # Reads

    def get(self, target: Target) -> dict:
        obj = self.store.get(target.rtype, target.namespace, target.name)
        if obj is None:
            raise status.not_found(target.rtype, target.name)
        return obj

    def list(self, target: Target, query: dict) -> dict:
        rtype = target.rtype
        labels = label_matcher(query.get("labelSelector"))
        selected = field_matcher(query.get("fieldSelector"), rtype.kind)
        with self.store.lock:
            revision = self.store.revision
            objects = self.store.list_objects(rtype, target.namespace or None)
        items = [obj for obj in objects if labels(obj) and selected(obj)]
        metadata: dict = {"resourceVersion": str(revision)}
        start = int(query.get("continue") or 0)
        limit = int(query.get("limit") or 0)
        if limit and start + limit < len(items):
            metadata["continue"] = str(start + limit)
            metadata["remainingItemCount"] = len(items) - start - limit
            items = items[start : start + limit]
        else:
            items = items[start:]
        if not rtype.custom:
            # The real server leaves kind and apiVersion off built-in list items.
            for item in items:
                item.pop("kind", None)
                item.pop("apiVersion", None)
        kind = f"{rtype.kind}List"
        return {"kind": kind, "apiVersion": rtype.api_version, "metadata": metadata, "items": items}

    # Writes

    def create(self, target: Target, body: bytes, options: WriteOptions) -> dict:
        obj = self._decode_object(target, _load(body, "application/json"))
        meta = obj.setdefault("metadata", {})
        if meta.get("resourceVersion"):
            raise status.bad_request("resourceVersion should not be set on objects to be created")
        if not meta.get("name") and meta.get("generateName"):
            suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
            meta["name"] = meta["generateName"] + suffix
        with self.store.lock:
            self._require_namespace(target)
            if self.store.get(target.rtype, target.namespace, meta.get("name", "")) is not None:
                raise status.already_exists(target.rtype, meta["name"])
            return self.commit(target, None, obj, options, "main")

    def replace(self, target: Target, body: bytes, options: WriteOptions) -> dict:
        obj = self._decode_object(target, _load(body, "application/json"))
        with self.store.lock:
            old = self.get(target)
            self._check_version(target, old, obj)
            if target.subresource == "status":
                return self.commit(target, old, obj, options, "status")
            return self.commit(target, old, obj, options, "main")

    def patch(self, target: Target, body: bytes, content_type: str, options: WriteOptions):
        """Returns (code, object): 201 when an apply created the object, else 200."""
        if content_type not in PATCH_TYPES or (
            target.rtype.custom and content_type == "application/strategic-merge-patch+json"
        ):
            accepted = ", ".join(t for t in PATCH_TYPES if "strategic" not in t or not target.rtype.custom)
            message = (
                f"the body of the request was in an unknown format - accepted media types include: {accepted}"
            )
            raise status.ApiError(415, message)
        if options.force and content_type != APPLY:
            raise status.bad_request("force is only allowed for apply")
        if content_type == APPLY:
            return self._apply(target, _load(body, APPLY), options)
        document = _load(body, content_type)
        scope = "status" if target.subresource == "status" else "main"
        with self.store.lock:
            old = self.get(target)
            patched: object
            try:
                if content_type == "application/json-patch+json":
                    if not isinstance(document, list):
                        raise PatchError("json patch must be a list of operations")
                    patched = json_patch(old, document)
                elif content_type == "application/merge-patch+json":
                    patched = merge_patch(old, document)
                else:
                    patched = strategic_merge_patch(old, document)
            except PatchError as error:
                raise status.ApiError(422, str(error)) from None
            if not isinstance(patched, dict):
                raise status.bad_request("the patch did not produce an object")
            patched.setdefault("metadata", {})
            self._check_version(target, old, patched)
            return 200, self.commit(target, old, patched, options, scope)

    def _apply(self, target: Target, config: object, options: WriteOptions):
        if not options.manager_given:
            raise status.field_manager_required()
        config = self._decode_object(target, config, apply=True)
        scope = "status" if target.subresource == "status" else "main"
        with self.store.lock:
            old = self.store.get(target.rtype, target.namespace, target.name)
            if old is None:
                if target.subresource:
                    raise status.not_found(target.rtype, target.name)
                self._require_namespace(target)
            else:
                self._check_version(target, old, config)
            entries = managed_fields.parse_managed(old or {})
            try:
                merged = managed_fields.apply(
                    old or {},
                    config,
                    entries,
                    manager=options.manager,
                    force=options.force,
                    scope=scope if target.rtype.has_status else "all",
                    api_version=target.rtype.api_version,
                    now=timestamp(self.clock),
                )
            except managed_fields.ApplyConflict as conflict:
                raise status.apply_conflict(conflict.conflicts, target.rtype.api_version) from None
            result = self.commit(target, old, merged, options, scope, entries=entries)
            return (201 if old is None else 200), result

    def _decode_object(self, target: Target, obj: object, *, apply: bool = False) -> dict:
        rtype = target.rtype
        if not isinstance(obj, dict):
            raise status.bad_request("the body of the request is not a JSON or YAML object")
        if apply and not (obj.get("apiVersion") and obj.get("kind")):
            raise status.bad_request("apply patches must specify apiVersion and kind")
        if target.subresource != "scale":
            if obj.get("apiVersion", rtype.api_version) != rtype.api_version:
                raise status.bad_request(
                    f"the API version in the data ({obj['apiVersion']}) does not match the "
                    f"expected API version ({rtype.api_version})"
                )
            if obj.get("kind", rtype.kind) != rtype.kind:
                raise status.bad_request(
                    f"the kind in the data ({obj['kind']}) does not match the expected kind ({rtype.kind})"
                )
        meta = obj.setdefault("metadata", {}) or {}
        if target.name and meta.get("name", target.name) != target.name:
            raise status.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({target.name})"
            )
        if target.name:
            meta["name"] = target.name
        if rtype.namespaced:
            if meta.get("namespace", target.namespace) != target.namespace:
                raise status.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = target.namespace
        return obj

    def _require_namespace(self, target: Target) -> None:
        if target.rtype.namespaced:
            namespaces = self.catalog.find("", "v1", "namespaces")
            if namespaces and self.store.get(namespaces, "", target.namespace) is None:
                raise status.namespace_not_found(target.namespace)

    def _check_version(self, target: Target, old: dict, new: dict) -> None:
        wanted = (new.get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != old["metadata"]["resourceVersion"]:
            raise status.modified_conflict(target.rtype, target.name)

    def commit(self, target, old, new, options, scope, entries=None) -> dict:
        """Store `new` in place of `old` (None on create) unless nothing changed or it is a
        dry-run; returns what the client sees. Raises ApiError 400/422 on invalid objects."""
        rtype = target.rtype
        new = prepare(rtype, old, new, scope, timestamp(self.clock))
        check_decodable(rtype, new)
        validate(rtype, new, old)
        self.check_rules(rtype, new)
        ownership_scope = scope if rtype.has_status else "all"
        if entries is None:
            entries = managed_fields.parse_managed(old or {})
            managed_fields.record_update(
                old,
                new,
                entries,
                manager=options.manager,
                scope=ownership_scope,
                api_version=rtype.api_version,
                now=timestamp(self.clock),
            )
        new["metadata"]["managedFields"] = managed_fields.render_managed(entries)
        if not new["metadata"]["managedFields"]:
            new["metadata"].pop("managedFields")
        if old is not None and _comparable(old) == _comparable(new):
            return old
        if options.dry_run:
            return new
        if (
            old is not None
            and old["metadata"].get("deletionTimestamp")
            and not new["metadata"].get("finalizers")
        ):
            self.store.write(rtype, new)
            return self.store.remove(rtype, target.namespace, target.name) or new
        stored = self.store.write(rtype, new)
        if rtype.kind == "CustomResourceDefinition" and rtype.group == crds.CRD_GROUP:
            for served in crds.served_types(stored):
                self.catalog.add(served)
        return stored
