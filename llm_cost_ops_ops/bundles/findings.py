"""What a bundle check reports: one finding per broken rule, naming where and why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .model import ManifestObject


@dataclass(frozen=True)
class Finding:
    """One rule broken by one object, at one field."""

    check: str
    rule: str
    environment: str
    object_ref: str
    field: str
    message: str
    severity: Literal["error", "warning"] = "error"

    @classmethod
    def of(
        cls,
        check: str,
        rule: str,
        environment: str,
        obj: ManifestObject | None,
        field: str,
        message: str,
        severity: Literal["error", "warning"] = "error",
    ) -> Finding:
        return cls(check, rule, environment, obj.ref if obj else "-", field, message, severity)

    def __str__(self) -> str:
        where = f"{self.object_ref} {self.field}".strip()
        return f"[{self.environment}] {where}: {self.message} (rule {self.check}/{self.rule})"


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]
