"""Kubernetes resource quantities ("250m", "1Gi", "1.5e3") as exact Decimals.

kubernetes.utils.parse_quantity does the same but importing it loads the whole generated client
(about 2 s), which every definitions load would pay; the grammar is small enough to keep here.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

_SUFFIXES: dict[str, int | Decimal] = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}
_PATTERN = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")


def parse_quantity(value: str | int | float) -> Decimal:
    """Parse a quantity; raises ValueError for anything that is not one."""
    match = _PATTERN.match(str(value).strip())
    if not match:
        raise ValueError(f"invalid quantity {value!r}")
    try:
        return Decimal(match.group(1)) * Decimal(_SUFFIXES[match.group(2) or ""])
    except InvalidOperation as exc:
        raise ValueError(f"invalid quantity {value!r}") from exc


def same_quantity(a: str | int | float | None, b: str | int | float | None) -> bool:
    if a is None or b is None:
        return a is b
    try:
        return parse_quantity(a) == parse_quantity(b)
    except ValueError:
        return False


_BINARY = (("Ei", 2**60), ("Pi", 2**50), ("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10))
_DECIMAL = (
    ("E", 18),
    ("P", 15),
    ("T", 12),
    ("G", 9),
    ("M", 6),
    ("k", 3),
    ("", 0),
    ("m", -3),
    ("u", -6),
    ("n", -9),
)


def canonical_quantity(value: str | int | float) -> str:
    """The quantity as the API server stores it (resource.Quantity's canonical form): binary
    suffixes stay binary (`1024Mi` -> `1Gi`), others become the largest decimal suffix that keeps
    the number whole (`1000m` -> `1`, `1500m` stays). Exponent forms and values that are not
    quantities are returned unchanged."""
    text = str(value).strip()
    match = _PATTERN.match(text)
    if not match or "e" in match.group(1).lower():
        return text
    number = parse_quantity(text)
    if (match.group(2) or "").endswith("i") and number == number.to_integral_value() and number >= 1024:
        whole = int(number)
        for suffix, size in _BINARY:
            if whole % size == 0:
                return f"{whole // size}{suffix}"
    if (match.group(2) or "").endswith("i") and number == number.to_integral_value():
        return str(int(number))
    for suffix, exponent in _DECIMAL:
        scaled = number.scaleb(-exponent)
        if scaled == scaled.to_integral_value() and (scaled != 0 or suffix == ""):
            return f"{int(scaled)}{suffix}"
    return text


def canonical_resources(body: Any) -> Any:
    """`body` with every quantity under `resources.requests|limits` and every emptyDir `sizeLimit`
    in canonical form (a copy; other fields untouched; not for ConfigMap or Secret data)."""
    if isinstance(body, list):
        return [canonical_resources(item) for item in body]
    if not isinstance(body, dict):
        return body
    out: dict[str, Any] = {}
    for key, item in body.items():
        if key == "resources" and isinstance(item, dict):
            out[key] = {
                k: (
                    {q: canonical_quantity(v) for q, v in item[k].items()}
                    if k in ("requests", "limits") and isinstance(item[k], dict)
                    else canonical_resources(item[k])
                )
                for k in item
            }
        elif key == "sizeLimit" and isinstance(item, str | int):
            out[key] = canonical_quantity(item)
        else:
            out[key] = canonical_resources(item)
    return out
