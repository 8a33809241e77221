"""Failures a test asks for: the next N requests, a random share of requests, a custom rule,
or server-side validation errors for matching objects."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from .catalog import ResourceType
from .status import ApiError, injected
from .validation import rejection

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class RecordedRequest(NamedTuple):
    """One request as the server saw it: (method, path, query)."""

    method: str
    path: str
    query: dict

    @property
    def is_write(self) -> bool:
        return self.method in WRITE_METHODS


@dataclass
class _FailNext:
    remaining: int
    code: int
    writes_only: bool
    after_write: bool
    message: str | None


@dataclass
class _Rule:
    predicate: Callable[[dict], bool]
    message: str
    field: str


Injector = Callable[[RecordedRequest], "int | ApiError | None"]


class FaultPlan:
    """Decides, per resource request, whether it fails, and with what."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._injectors: list[Injector] = []
        self._fail_next: list[_FailNext] = []
        self._ratio: tuple[float, tuple[int, ...], bool, random.Random] | None = None
        self._rules: list[_Rule] = []

    def inject(self, injector: Injector) -> None:
        with self._lock:
            self._injectors.append(injector)

    def fail_next(self, count, code, *, writes_only, after_write, message) -> None:
        with self._lock:
            self._fail_next.append(_FailNext(count, code, writes_only, after_write, message))

    def fail_ratio(self, ratio: float, codes: Iterable[int], writes_only: bool, seed) -> None:
        with self._lock:
            self._ratio = (ratio, tuple(codes), writes_only, random.Random(seed))

    def reject(self, predicate: Callable[[dict], bool], message: str, field: str) -> None:
        with self._lock:
            self._rules.append(_Rule(predicate, message, field))

    def clear(self) -> None:
        with self._lock:
            self._injectors.clear()
            self._fail_next.clear()
            self._ratio = None
            self._rules.clear()

    def before(self, request: RecordedRequest) -> ApiError | None:
        """The fault to return instead of handling `request`, if any."""
        with self._lock:
            injectors = list(self._injectors)
        # Injectors run unlocked: they may read server state, which takes the store's lock.
        for injector in injectors:
            outcome = injector(request)
            if isinstance(outcome, ApiError):
                return outcome
            if outcome:
                return injected(int(outcome))
        with self._lock:
            planned = self._take_planned(request, after_write=False)
            if planned:
                return planned
            if self._ratio:
                ratio, codes, writes_only, rng = self._ratio
                if (request.is_write or not writes_only) and rng.random() < ratio:
                    return injected(rng.choice(codes))
        return None

    def after(self, request: RecordedRequest) -> ApiError | None:
        """The fault to return after a request was handled (its write already happened)."""
        with self._lock:
            return self._take_planned(request, after_write=True)

    def _take_planned(self, request: RecordedRequest, *, after_write: bool) -> ApiError | None:
        for planned in self._fail_next:
            if planned.after_write != after_write or (planned.writes_only and not request.is_write):
                continue
            planned.remaining -= 1
            if planned.remaining <= 0:
                self._fail_next.remove(planned)
            return injected(planned.code, planned.message)
        return None

    def check_rules(self, rtype: ResourceType, obj: dict) -> None:
        """Raise the 422 of the first registered rule that matches `obj`."""
        with self._lock:
            rules = list(self._rules)
        for rule in rules:
            if rule.predicate(obj):
                raise rejection(rtype, obj, rule.message, rule.field)
