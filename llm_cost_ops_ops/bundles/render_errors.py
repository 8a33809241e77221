"""Kustomize's error text without the Secret values it may quote.

When two objects collide, kustomize prints both as JSON, a Secret's `data` and `stringData`
included. Before a render error leaves the renderer: every JSON object in the text has its
`data`/`stringData` values masked, every Secret value found in the overlay's own files (Secret
manifests and secretGenerator literals, with base64-decoded `data`) is masked wherever it appears,
and the result goes through the project's one redaction function.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from ..redaction import MASK, redact

_SECRET_FIELDS = ("data", "stringData")
_KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        masked = {key: _masked(item) for key, item in value.items()}
        if value.get("kind", "Secret") == "Secret":
            for field in _SECRET_FIELDS:
                if isinstance(masked.get(field), dict):
                    masked[field] = dict.fromkeys(masked[field], MASK)
        return masked
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value


def _mask_json(text: str) -> str:
    decoder = json.JSONDecoder()
    out, index = [], 0
    while (start := text.find("{", index)) != -1:
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            out.append(text[index : start + 1])
            index = start + 1
            continue
        out.append(text[index:start] + json.dumps(_masked(value), separators=(",", ":")))
        index = end
    return "".join(out) + text[index:]


def _documents(path: Path) -> list[Any]:
    try:
        return [doc for doc in yaml.safe_load_all(path.read_text()) if isinstance(doc, dict)]
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []  # kustomize reports an unreadable file itself; nothing to collect from it


def _kustomization(directory: Path) -> Path | None:
    return next((directory / n for n in _KUSTOMIZATION_NAMES if (directory / n).is_file()), None)


def _files(overlay: Path) -> Iterator[Path]:
    """The overlay's kustomization files and the local files and directories they name."""
    seen: set[Path] = set()
    pending = [overlay.resolve()]
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        if path.is_dir():
            found = _kustomization(path)
            if found is not None:
                pending.append(found)
            continue
        if not path.is_file():
            continue
        yield path
        for doc in _documents(path):
            for key in ("resources", "components", "bases", "patches", "patchesStrategicMerge"):
                for entry in doc.get(key) or []:
                    target = entry.get("path") if isinstance(entry, dict) else entry
                    if isinstance(target, str) and "://" not in target:
                        pending.append((path.parent / target).resolve())
            for generator in doc.get("secretGenerator") or []:
                for source in [*(generator.get("files") or []), *(generator.get("envs") or [])]:
                    pending.append((path.parent / str(source).split("=", 1)[-1]).resolve())


def secret_values(overlay: Path) -> set[str]:
    """Every Secret value written in the overlay's files: manifests (`data` also decoded),
    secretGenerator literals, and the env and data files generators read."""
    values: set[str] = set()
    for path in _files(overlay):
        if path.suffix not in (".yaml", ".yml") and path.name != "Kustomization":
            lines = path.read_text(errors="replace").splitlines()
            values.update(line.split("=", 1)[-1].strip() for line in lines)
            continue
        for doc in _documents(path):
            if doc.get("kind") == "Secret":
                for field in _SECRET_FIELDS:
                    for value in (doc.get(field) or {}).values():
                        values.add(str(value))
                        with contextlib.suppress(binascii.Error, UnicodeDecodeError):
                            values.add(base64.b64decode(str(value), validate=True).decode())
            for generator in doc.get("secretGenerator") or []:
                values.update(str(item).split("=", 1)[-1] for item in generator.get("literals") or [])
    return {value for value in values if value}


def redact_render_error(text: str, overlay: Path) -> str:
    """`text` from kustomize with every Secret value masked (see the module docstring)."""
    return redact(_mask_json(text), secret_values(overlay))
