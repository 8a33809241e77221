"""The one YAML loader for the files this project owns: `environments.yaml`, `schedules/*.yaml` and
the run configs under `jobs/`.

PyYAML's safe loader keeps the last of two equal keys in a mapping without a word, so a second
`dev:` block or a repeated `replicas:` silently replaces the first. This loader refuses them, and
every problem it reports names the file and the line: `<file>:<line>: <problem>`.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _DuplicateKey(yaml.MarkedYAMLError):
    pass


class _StrictLoader(yaml.SafeLoader):
    """The safe loader, refusing a key given twice in one mapping (merge keys `<<` excepted: an
    explicit key overriding a merged one is what merging is for)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Hashable, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                continue  # the base constructor reports unhashable keys with its own message
            line = key_node.start_mark.line + 1
            if key in first_line:
                raise _DuplicateKey(
                    problem=f"duplicate key {key!r} (first given at line {first_line[key]})",
                    problem_mark=key_node.start_mark,
                )
            first_line[key] = line
        return super().construct_mapping(node, deep=deep)


def _problem(exc: yaml.YAMLError) -> tuple[str, str]:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = f":{mark.line + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc)
    return line, " ".join(str(problem).split())


def read_yaml_tree(path: Path) -> tuple[Any, yaml.Node | None]:
    """The data of a one-document YAML file and its node tree (for line numbers).

    Raises ConfigError `<file>:<line>: ...` for a missing or unreadable file, invalid YAML or a
    key given twice in one mapping.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except _DuplicateKey as exc:
        line, problem = _problem(exc)
        raise ConfigError(f"{path}{line}: {problem}") from None
    except yaml.YAMLError as exc:
        line, problem = _problem(exc)
        raise ConfigError(f"{path}{line}: invalid YAML: {problem}") from None
    finally:
        loader.dispose()
    return data, node


def read_yaml(path: Path) -> Any:
    """The data of a one-document YAML file. Raises ConfigError as `read_yaml_tree` does."""
    return read_yaml_tree(path)[0]


def line_of(node: yaml.Node | None, location: Sequence[int | str]) -> int | None:
    """The 1-based line of the deepest node on `location` (mapping keys, sequence indexes)."""
    found: int | None = None
    for part in location:
        if isinstance(node, yaml.MappingNode):
            match = next((pair for pair in node.value if pair[0].value == str(part)), None)
            if match is None:
                break
            found, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            found = node.start_mark.line + 1
        else:
            break
    return found
