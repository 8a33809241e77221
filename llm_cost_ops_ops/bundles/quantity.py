"""Kubernetes resource quantities ("250m", "1Gi", "1.5e3") as exact Decimals.

kubernetes.utils.parse_quantity does the same but importing it loads the whole generated client
(about 2 s), which every definitions load would pay; the grammar is small enough to keep here.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

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
