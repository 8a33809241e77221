"""`?watch=true`: stream ADDED/MODIFIED/DELETED events as JSON lines from a resourceVersion on."""

from __future__ import annotations

import time
from collections.abc import Callable

from . import status
from .selectors import field_matcher, label_matcher
from .store import WatchEvent
from .verbs import Resources, Target

_POLL_SECONDS = 0.2
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


def _gone(requested: int, current: int) -> dict:
    expired = status.ApiError(410, f"too old resource version: {requested} ({current})", "Expired")
    return {"type": "ERROR", "object": expired.body()}


def _translate(event: WatchEvent, matches: Callable[[dict], bool]) -> dict | None:
    """The event a filtered watch sees: objects entering or leaving the selection are ADDED or
    DELETED, as on the real server."""
    now = matches(event.obj)
    before = event.old is not None and matches(event.old)
    if event.type == "DELETED":
        return {"type": "DELETED", "object": event.obj} if before else None
    if now and before:
        return {"type": "MODIFIED", "object": event.obj}
    if now:
        return {"type": "ADDED", "object": event.obj}
    if before:
        return {"type": "DELETED", "object": event.obj}
    return None


def stream(
    resources: Resources,
    target: Target,
    query: dict,
    send: Callable[[dict], None],
    disconnected: Callable[[], bool],
) -> None:
    """Send events until `timeoutSeconds`, server shutdown or client disconnect."""
    rtype, store = target.rtype, resources.store
    labels = label_matcher(query.get("labelSelector"))
    selected = field_matcher(query.get("fieldSelector"), rtype.kind)

    def matches(obj: dict) -> bool:
        in_namespace = not target.namespace or obj["metadata"].get("namespace") == target.namespace
        return in_namespace and labels(obj) and selected(obj)

    timeout = float(query.get("timeoutSeconds") or 0)
    deadline = time.monotonic() + timeout if timeout else None
    since = query.get("resourceVersion") or "0"
    if since == "0":
        with store.lock:
            revision = store.revision
            initial = store.list_objects(rtype, target.namespace or None)
        for obj in initial:
            if matches(obj):
                send({"type": "ADDED", "object": obj})
        if (query.get("sendInitialEvents") or "").lower() == "true":
            # client-go's watch-list (kubectl rollout status) waits for this bookmark.
            marker = {"resourceVersion": str(revision), "annotations": {INITIAL_EVENTS_END: "true"}}
            bookmark = {"kind": rtype.kind, "apiVersion": rtype.api_version, "metadata": marker}
            send({"type": "BOOKMARK", "object": bookmark})
    else:
        try:
            revision = int(since)
        except ValueError:
            raise status.bad_request(f"invalid resource version: {since}") from None
    key = (rtype.group, rtype.plural)
    while not store.closed:
        remaining = deadline - time.monotonic() if deadline else _POLL_SECONDS
        if remaining <= 0:
            return
        with store.changed:
            batch = store.events_after(revision)
            if batch == []:
                store.changed.wait(min(remaining, _POLL_SECONDS))
                batch = store.events_after(revision)
        if batch is None:
            send(_gone(revision, store.revision))
            return
        for event in batch:
            revision = event.resource_version
            translated = _translate(event, matches) if event.key == key else None
            if translated:
                send(translated)
        if disconnected():
            return
