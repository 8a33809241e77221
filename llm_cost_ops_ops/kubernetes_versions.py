"""Which Kubernetes versions the strict schemas shipped in `kubernetes-validate` cover.

Found on disk without importing the package (it imports jsonschema), so `environments.yaml` can be
checked when definitions load at no cost.
"""

from __future__ import annotations

import importlib.util
import re
from functools import cache
from pathlib import Path

from packaging.version import InvalidVersion, Version

# A target version as environments.yaml gives it: 1.30, v1.30 or 1.30.2.
_VERSION = re.compile(r"^v?\d+\.\d+(?:\.\d+)?$")


def schema_root() -> Path:
    """The `kubernetes-json-schema` directory inside the kubernetes-validate wheel."""
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("kubernetes-validate is not installed: run `make install`")
    return Path(next(iter(spec.submodule_search_locations))) / "kubernetes-json-schema"


@cache
def strict_schema_dirs() -> tuple[tuple[Version, Path], ...]:
    """Every strict schema directory with its Kubernetes version, oldest first."""
    return tuple(
        sorted(
            (Version(path.name[1:].split("-")[0]), path)
            for path in schema_root().iterdir()
            if path.name.endswith("-local-strict")
        )
    )


def parse_target(kubernetes_version: str) -> Version:
    """The target version as `major.minor[.patch]`.

    Raises ValueError saying what is expected, and which versions the shipped schemas cover, for
    text that is not such a version or a version outside them.
    """
    shipped = strict_schema_dirs()
    oldest, newest = shipped[0][0], shipped[-1][0]
    covered = f"the shipped schemas cover {oldest.major}.{oldest.minor} to {newest.major}.{newest.minor}"
    if not _VERSION.match(kubernetes_version):
        raise ValueError(f"{kubernetes_version!r} is not a Kubernetes version like 1.30 ({covered})")
    try:
        wanted = Version(kubernetes_version.lstrip("v"))
    except InvalidVersion:  # the pattern above should make this unreachable; keep the message
        raise ValueError(f"{kubernetes_version!r} is not a Kubernetes version like 1.30") from None
    if wanted.release[:2] > newest.release[:2]:
        raise ValueError(f"Kubernetes {kubernetes_version} is newer than the schemas shipped ({covered})")
    if wanted.release[:2] < oldest.release[:2]:
        raise ValueError(f"Kubernetes {kubernetes_version} is older than the schemas shipped ({covered})")
    return wanted
