"""A content-addressed store of rendered bundles on a local directory.

`sha256/<hex>.yaml` holds the canonical text; `sha256/<hex>.json` what the text cannot carry
(environment, source file of each object, kustomize warnings, `images:` entries). The same bundle
is stored once.
A bundle may carry Secret values (dev's placeholder): files are 0600 in 0700 directories.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ..errors import BundleStoreError
from ..private_files import private_directory
from .model import ManifestObject, RenderedBundle, digest_of, load_documents


def _write_atomically(path: Path, data: str, root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    private_directory(path.parent, root)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")  # mkstemp: 0600
    with os.fdopen(fd, "w") as handle:
        handle.write(data)
    os.replace(tmp, path)


class BundleStore:
    """Put and get bundles by digest (`sha256:<hex>`)."""

    def __init__(self, root: Path):
        self.root = root

    def _paths(self, digest: str) -> tuple[Path, Path]:
        algorithm, _, hexdigest = digest.partition(":")
        if algorithm != "sha256" or len(hexdigest) != 64:
            raise BundleStoreError(f"not a sha256 digest: {digest!r}")
        base = self.root / "sha256" / hexdigest
        return base.with_suffix(".yaml"), base.with_suffix(".json")

    def put(self, bundle: RenderedBundle) -> Path:
        """Store a bundle (a no-op when that digest is already there); returns the text's path."""
        text_path, meta_path = self._paths(bundle.digest)
        if not text_path.exists() or digest_of(text_path.read_text()) != bundle.digest:
            _write_atomically(text_path, bundle.text, self.root)  # new, or repairing a damaged copy
        meta = {
            "environment": bundle.environment,
            "sources": [obj.source for obj in bundle.objects],
            "warnings": list(bundle.warnings),
            "image_entries": list(bundle.image_entries),
        }
        _write_atomically(meta_path, json.dumps(meta), self.root)
        return text_path

    def get(self, digest: str) -> RenderedBundle:
        """Load a bundle, verifying its digest. Raises BundleStoreError when missing or altered."""
        text_path, meta_path = self._paths(digest)
        try:
            text = text_path.read_text()
            meta = json.loads(meta_path.read_text())
        except FileNotFoundError as exc:
            raise BundleStoreError(f"bundle {digest} is not in the store at {self.root}") from exc
        except json.JSONDecodeError as exc:
            raise BundleStoreError(f"bundle {digest}: {meta_path} is not valid JSON ({exc.msg})") from exc
        if digest_of(text) != digest:
            raise BundleStoreError(f"bundle {digest} at {text_path} does not match its digest")
        bodies = load_documents(text)
        sources = meta.get("sources") or [""] * len(bodies)
        if len(sources) != len(bodies):
            raise BundleStoreError(
                f"bundle {digest}: {meta_path} lists {len(sources)} sources for {len(bodies)} objects"
            )
        objects = tuple(ManifestObject(body, src) for body, src in zip(bodies, sources, strict=True))
        return RenderedBundle(
            meta["environment"],
            objects,
            text,
            digest,
            tuple(meta.get("warnings", ())),
            tuple(meta.get("image_entries", ())),
        )
