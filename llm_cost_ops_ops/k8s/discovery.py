"""Which API resource serves a kind: discovery done once per run.

The kubernetes client's own discoverer asks for /version and /apis when a connection is made, and
for a core kind (`v1`) fetches every group's `v1` document (about 47 requests on a real API
server), again for every connection. Here one GET of `/api/v1` or `/apis/<group>/<version>` is
made per group version the run uses, and nothing else; the answer is kept for the run and shared by
every connection the run makes to the same API server (the Kubernetes resource holds one
`Discovery` per server). A group version the server does not serve (404) is remembered too, so an
absent CRD is asked about once.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from kubernetes.dynamic.resource import Resource

from .errors import ApiError

Kinds = dict[str, Resource]
T = TypeVar("T")


class Connection(Protocol):
    """What discovery needs of a connection (client.Kube): its API client and its retried call."""

    api_client: Any

    def call(self, what: str, fn: Callable[[], T]) -> T: ...


def discovery_path(api_version: str) -> str:
    """The discovery document of a group version: /api/v1 for the core group, else /apis/<gv>."""
    return "/api/v1" if api_version == "v1" else f"/apis/{api_version}"


def parse_resource_list(api_version: str, document: dict) -> Kinds:
    """The kinds of one discovery document (an APIResourceList), each with its subresources."""
    group, _, version = api_version.rpartition("/")
    prefix = "apis" if group else "api"
    entries = document.get("resources") or []
    subresources: dict[str, dict[str, dict]] = {}
    for entry in entries:
        if "/" in entry.get("name", ""):
            parent, sub = entry["name"].split("/", 1)
            subresources.setdefault(parent, {})[sub] = entry
    kinds: Kinds = {}
    for entry in entries:
        name = entry.get("name", "")
        if "/" in name or not entry.get("kind") or entry["kind"] in kinds:
            continue
        fields = {k: v for k, v in entry.items() if k not in ("group", "version", "prefix", "api_version")}
        kinds[entry["kind"]] = Resource(
            prefix=prefix,
            group=group,
            api_version=version,
            preferred=True,
            subresources=subresources.get(name),
            **fields,
        )
    return kinds


class Discovery:
    """The kinds one API server serves, learned one group version at a time and then kept."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: dict[str, Kinds | None] = {}  # None: the group version is not served

    def resource(self, kube: Connection, api_version: str, kind: str) -> Resource | None:
        """The resource serving `kind`, or None when the server does not serve it.
        Raises ApiError when discovery itself fails (after the connection's retries)."""
        with self._lock:  # one fetch per group version, also with connections on several threads
            if api_version not in self._versions:
                self._versions[api_version] = self._fetch(kube, api_version)
            kinds = self._versions[api_version]
        return None if kinds is None else kinds.get(kind)

    @staticmethod
    def _fetch(kube: Connection, api_version: str) -> Kinds | None:
        path = discovery_path(api_version)
        try:
            response = kube.call(
                f"discovery of {api_version}",
                lambda: kube.api_client.call_api(
                    path,
                    "GET",
                    header_params={"Accept": "application/json"},
                    auth_settings=["BearerToken"],
                    _preload_content=False,
                    _return_http_data_only=True,
                ),
            )
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return parse_resource_list(api_version, json.loads(response.data))
