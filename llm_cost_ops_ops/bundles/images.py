"""Container image references: is the tag fixed?"""

from __future__ import annotations

MUTABLE_TAGS = frozenset({"latest", "main", "master", "edge", "dev", "nightly"})


def image_tag(image: str) -> str | None:
    """The tag of an image reference (`registry:5000/name:tag` -> `tag`), or None when untagged."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def is_pinned(image: str) -> bool:
    """A digest, or a tag that is not one of the conventionally moving ones."""
    if "@sha256:" in image:
        return True
    tag = image_tag(image)
    return tag is not None and tag.lower() not in MUTABLE_TAGS
