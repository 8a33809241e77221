"""Secret values that are placeholders: shipped by mistake, or never replaced."""

from __future__ import annotations

# Whole values (case-insensitive) that nobody means as a secret.
PLACEHOLDER_VALUES = frozenset(
    {"todo", "tbd", "xxx", "example", "password", "secret", "changeit", "placeholder", "dummy"}
)
# Words that mark a value as a placeholder wherever they appear in it (`changeme-jwt-secret`).
PLACEHOLDER_MARKERS = ("changeme", "change_me", "change-me", "replace_me", "replace-me", "placeholder")


def is_placeholder(key: str, value: str) -> bool:
    """True for an empty value, a value equal to its key, a conventional placeholder word, or a
    value holding one of the markers; case-insensitive."""
    lowered = value.strip().lower()
    if not lowered or lowered == key.strip().lower():
        return True
    if lowered in PLACEHOLDER_VALUES or set(lowered) == {"x"}:
        return True
    return any(marker in lowered for marker in PLACEHOLDER_MARKERS)
