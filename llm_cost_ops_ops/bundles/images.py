"""Container image references: is the tag fixed, and did an `images:` entry take effect?"""

from __future__ import annotations

import re
from collections.abc import Iterable

MOVING_TAGS = frozenset({"latest", "main", "master", "stable", "edge", "nightly", "dev"})
# A version-like tag: 1, 1.4, v1.4.2, 1.4.2-alpine, 2024.11.01, 16.6-bookworm ...
_VERSION = re.compile(r"^v?\d+([._-][0-9A-Za-z]+)*$")
_COMMIT = re.compile(r"^[0-9a-f]{7,40}$")


def image_repository(image: str) -> str:
    """The image without tag or digest (`registry:5000/name:tag@sha256:..` -> `registry:5000/name`)."""
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    last = last.split(":", 1)[0]
    return f"{head}/{last}" if head else last


def image_tag(image: str) -> str | None:
    """The tag of an image reference (`registry:5000/name:tag` -> `tag`), or None when untagged."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def image_digest(image: str) -> str | None:
    return image.split("@", 1)[1] if "@" in image else None


def moving_reason(image: str, environments: Iterable[str] = ()) -> str | None:
    """Why the image may change under the same reference, or None when it is pinned.

    Pinned means a digest, or a version-like tag that is not a conventional moving one, does not
    end in `-latest` and is not an environment's name.
    """
    if image_digest(image):
        return None
    tag = image_tag(image)
    if tag is None:
        return "it has no tag (kubelet pulls latest)"
    lowered = tag.lower()
    if lowered in MOVING_TAGS or lowered.endswith("-latest"):
        return f"tag {tag!r} moves"
    if lowered in {e.lower() for e in environments}:
        return f"tag {tag!r} is an environment's name and moves with it"
    if not _VERSION.match(tag) and not _COMMIT.match(tag):
        return f"tag {tag!r} is not a version"
    return None


def is_pinned(image: str, environments: Iterable[str] = ()) -> bool:
    return moving_reason(image, environments) is None


def entry_takes_effect(entry: dict[str, str], images: Iterable[str], later: Iterable[dict[str, str]]) -> bool:
    """True when some rendered image is what the `images:` entry turns an image into.

    An entry that matched no image leaves no trace: no rendered image has its new name with its
    new tag or digest. An entry whose result a later entry renamed counts as taking effect.
    """
    repository = entry.get("newName") or entry["name"]
    for image in images:
        if image_repository(image) != repository:
            continue
        if "newTag" in entry and image_tag(image) != entry["newTag"]:
            continue
        if "digest" in entry and image_digest(image) != entry["digest"]:
            continue
        return True
    return any(other["name"] == repository for other in later)
