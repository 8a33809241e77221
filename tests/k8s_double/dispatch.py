"""One request in, one response out: auth, faults, routing, then the verb."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from . import removal, status, watching
from .catalog import Catalog
from .faults import FaultPlan, RecordedRequest
from .routing import Discovery, route
from .selectors import field_matcher, label_matcher
from .subresources import PodLogs, scale_view, write_scale
from .verbs import Resources, Target, WriteOptions


@dataclass
class Response:
    code: int
    payload: dict | str | None = None
    headers: dict = field(default_factory=dict)
    # For watches: called with (send, disconnected) to stream JSON lines.
    stream: Callable[[Callable[[dict], None], Callable[[], bool]], None] | None = None


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


def _write_options(query: dict, user_agent: str) -> WriteOptions:
    dry_run = query.get("dryRun")
    if dry_run not in (None, "All"):
        raise status.bad_request(f'dryRun: Unsupported value: "{dry_run}": supported values: "All"')
    manager = query.get("fieldManager") or ""
    return WriteOptions(
        dry_run=dry_run == "All",
        manager=manager or user_agent.split("/", 1)[0] or "unknown",
        manager_given=bool(manager),
        force=_truthy(query.get("force")),
    )


@dataclass
class Dispatcher:
    catalog: Catalog
    resources: Resources
    logs: PodLogs
    faults: FaultPlan
    version: str
    token: str | None = None
    address: str = ""

    def handle(self, request: RecordedRequest, body: bytes, headers: dict) -> Response:
        """Answer `request`; every failure becomes a Status response."""
        try:
            if self.token and headers.get("authorization") != f"Bearer {self.token}":
                raise status.ApiError(401, "Unauthorized")
            routed = route(self.catalog, request.path, self.version, self.address)
            if isinstance(routed, Discovery):
                if request.method != "GET":
                    raise status.method_not_allowed()
                return Response(200, routed.document)
            fault = self.faults.before(request)
            if fault:
                raise fault
            query = dict(request.query)
            if routed.watch:
                query["watch"] = "true"
            response = self._resource(request.method, routed.target, query, body, headers)
            fault = self.faults.after(request)
            if fault:
                raise fault
            return response
        except status.ApiError as error:
            extra = {"Retry-After": str(error.retry_after)} if error.retry_after else {}
            return Response(error.code, error.body(), extra)
        except Exception as error:  # a bug in the double: answer 500 with the trace, not a hang-up
            trace = "".join(traceback.format_exception(error))
            return Response(500, status.ApiError(500, f"k8s_double internal error: {trace}").body())

    def _resource(self, method: str, target: Target, query: dict, body: bytes, headers: dict) -> Response:
        sub = target.subresource
        if method == "GET":
            return self._read(target, query)
        if not target.name and method in ("PUT", "PATCH"):
            raise status.method_not_allowed()
        if sub in ("log", "exec") or (method == "POST" and target.name):
            if sub == "exec":
                raise status.bad_request("Upgrade request required")
            raise status.method_not_allowed()
        options = _write_options(query, headers.get("user-agent", ""))
        content_type = headers.get("content-type", "application/json").split(";")[0].strip()
        if method == "POST":
            return Response(201, self.resources.create(target, body, options))
        if method == "PUT" and sub == "scale":
            return Response(200, write_scale(self.resources, target, body, None, options))
        if method == "PUT":
            return Response(200, self.resources.replace(target, body, options))
        if method == "PATCH" and sub == "scale":
            return Response(200, write_scale(self.resources, target, body, content_type, options))
        if method == "PATCH":
            code, obj = self.resources.patch(target, body, content_type, options)
            return Response(code, obj)
        if method == "DELETE" and sub:
            raise status.method_not_allowed()
        if method == "DELETE" and target.name:
            code, obj = removal.delete(self.resources, target, options, query, body)
            return Response(code, obj)
        if method == "DELETE" and "deletecollection" in target.rtype.verbs:
            return Response(200, removal.delete_collection(self.resources, target, options, query, body))
        raise status.method_not_allowed()

    def _read(self, target: Target, query: dict) -> Response:
        if target.subresource == "log":
            return Response(200, self.logs.read(self.resources, target, query))
        if target.subresource == "exec":
            raise status.bad_request("Upgrade request required")
        if target.subresource == "scale":
            return Response(200, scale_view(self.resources.get(target)))
        if target.name:
            return Response(200, self.resources.get(target))
        if _truthy(query.get("watch")):
            # Malformed selectors fail before the stream starts, as a plain 400.
            label_matcher(query.get("labelSelector"))
            field_matcher(query.get("fieldSelector"), target.rtype.kind)

            def run(send, disconnected):
                watching.stream(self.resources, target, query, send, disconnected)

            return Response(200, stream=run)
        return Response(200, self.resources.list(target, query))
