"""Thread-safe in-memory storage with one global resourceVersion and an event history for
watches. Semantics (validation, generation, ownership) live in `verbs.py`; this only stores."""

from __future__ import annotations

import copy
import threading
from collections import deque
from dataclasses import dataclass

from .catalog import ResourceType

StoreKey = tuple[str, str]  # (group, plural): every version of a type shares storage


@dataclass(frozen=True)
class WatchEvent:
    resource_version: int
    type: str  # ADDED, MODIFIED or DELETED
    key: StoreKey
    obj: dict
    old: dict | None


def _key(rtype: ResourceType) -> StoreKey:
    return (rtype.group, rtype.plural)


class Store:
    """Objects by type, namespace and name. Hold `lock` for read-modify-write sequences."""

    def __init__(self, history: int = 10_000):
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.closed = False
        self._objects: dict[StoreKey, dict[tuple[str, str], dict]] = {}
        self._events: deque[WatchEvent] = deque(maxlen=history)
        self._revision = 0
        self._oldest = 1  # the oldest revision a watch may resume from

    @property
    def revision(self) -> int:
        with self.lock:
            return self._revision

    def get(self, rtype: ResourceType, namespace: str, name: str) -> dict | None:
        with self.lock:
            obj = self._objects.get(_key(rtype), {}).get((namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def list_objects(self, rtype: ResourceType, namespace: str | None = None) -> list[dict]:
        with self.lock:
            objects = self._objects.get(_key(rtype), {})
            selected = [obj for (ns, _), obj in sorted(objects.items()) if namespace in (None, ns)]
            return copy.deepcopy(selected)

    def write(self, rtype: ResourceType, obj: dict) -> dict:
        """Store `obj` under a new resourceVersion and record ADDED or MODIFIED."""
        with self.lock:
            meta = obj["metadata"]
            place = (meta.get("namespace", ""), meta["name"])
            objects = self._objects.setdefault(_key(rtype), {})
            old = objects.get(place)
            self._revision += 1
            stored = copy.deepcopy(obj)
            stored["metadata"]["resourceVersion"] = str(self._revision)
            objects[place] = stored
            kind = "ADDED" if old is None else "MODIFIED"
            self._record(WatchEvent(self._revision, kind, _key(rtype), stored, old))
            return copy.deepcopy(stored)

    def remove(self, rtype: ResourceType, namespace: str, name: str) -> dict | None:
        """Delete and record DELETED; the final object carries the deletion's resourceVersion."""
        with self.lock:
            old = self._objects.get(_key(rtype), {}).pop((namespace, name), None)
            if old is None:
                return None
            self._revision += 1
            final = copy.deepcopy(old)
            final["metadata"]["resourceVersion"] = str(self._revision)
            self._record(WatchEvent(self._revision, "DELETED", _key(rtype), final, old))
            return copy.deepcopy(final)

    def drop_type(self, rtype: ResourceType) -> None:
        """Forget every object of a type without events, as when its CRD is deleted."""
        with self.lock:
            self._objects.pop(_key(rtype), None)

    def _record(self, event: WatchEvent) -> None:
        if len(self._events) == self._events.maxlen:
            self._oldest = self._events[0].resource_version + 1
        self._events.append(event)
        self.changed.notify_all()

    def events_after(self, revision: int) -> list[WatchEvent] | None:
        """Events newer than `revision`, or None if history no longer reaches back that far."""
        with self.lock:
            if revision + 1 < self._oldest:
                return None
            return [event for event in self._events if event.resource_version > revision]

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.changed.notify_all()
