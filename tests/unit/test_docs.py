"""The documentation stays true to the code.

Cases:
- every `jobs/...yaml` path in README.md and docs/*.md exists;
- every `--job NAME` / `-j NAME` in their code (inline and fenced) names a job of the code location;
- every `llm-cost-ops-ops run OPERATION [ENV]` there and in jobs/*.yaml names a job;
- every `make TARGET` in their code is a Makefile target;
- every asset named in their code (`dev_deployed`, `<env>_schema`, `key:...` selections) is an asset
  of the code location, and no asset is named by its old `stage/env` key;
- docs/configuration.md documents exactly the fields of each resource class (both directions);
- docs/configuration.md documents exactly the fields of an environment in environments.yaml;
- every `LLM_COST_OPS_OPS_*` variable the package reads is in docs/configuration.md.
"""

from __future__ import annotations

import re
from pathlib import Path

import pydantic
import pytest

from llm_cost_ops_ops.defs.backup_storage import BackupStorageResource
from llm_cost_ops_ops.defs.databases import DatabaseResource
from llm_cost_ops_ops.defs.kubernetes import KubernetesResource
from llm_cost_ops_ops.defs.notify import NotifierResource
from llm_cost_ops_ops.defs.resources import BundleIOManager, PlatformManifests
from llm_cost_ops_ops.defs.smoke import SmokeResource
from llm_cost_ops_ops.environments import EnvironmentSpec

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CONFIGURATION = ROOT / "docs" / "configuration.md"
RESOURCES = [
    PlatformManifests,
    BundleIOManager,
    KubernetesResource,
    DatabaseResource,
    BackupStorageResource,
    SmokeResource,
    NotifierResource,
]


def _code(text: str) -> str:
    """The fenced blocks and inline code spans of a Markdown text, one per line."""
    fenced = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M)
    prose = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.S | re.M)
    return "\n".join([*fenced, *re.findall(r"`([^`\n]+)`", prose)])


def _mentions(pattern: str) -> list[tuple[str, str]]:
    return [
        (doc.name, name) for doc in DOCS for name in sorted(set(re.findall(pattern, _code(doc.read_text()))))
    ]


def _table_rows(section: str) -> list[str]:
    return re.findall(r"^\| `([^`]+)` \|", section, flags=re.M)


def _section(text: str, heading: str) -> str:
    start = text.index(heading) + len(heading)
    following = re.search(r"^#{1,2} ", text[start:], flags=re.M)
    return text[start : start + following.start()] if following else text[start:]


def _documented_resources() -> dict[str, set[str]]:
    text = _section(CONFIGURATION.read_text(), "## Resources")
    parts = re.split(r"^### `(\w+)`$", text, flags=re.M)
    return {name: set(_table_rows(body)) for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def _spec_fields(model: type[pydantic.BaseModel], prefix: str = "") -> set[str]:
    fields: set[str] = set()
    for name, info in model.model_fields.items():
        nested = [
            arg
            for arg in (info.annotation, *getattr(info.annotation, "__args__", ()))
            if isinstance(arg, type) and issubclass(arg, pydantic.BaseModel)
        ]
        fields |= _spec_fields(nested[0], f"{prefix}{name}.") if nested else {f"{prefix}{name}"}
    return fields


@pytest.mark.parametrize(("doc", "path"), _mentions(r"\bjobs/[A-Za-z0-9_./-]+\.yaml"))
def test_run_config_paths_exist(doc, path):
    assert (ROOT / path).is_file(), f"{doc} mentions {path}, which does not exist"


def test_job_names_are_jobs():
    from llm_cost_ops_ops.definitions import defs

    jobs = {job.name for job in defs.resolve_all_job_defs()}
    mentioned = _mentions(r"(?:--job|(?<![\w-])-j)\s+([A-Za-z0-9_]+)(?![\w<{])")
    assert mentioned, "no job mentioned: the pattern is broken"
    assert [m for m in mentioned if m[1] not in jobs] == []


def test_asset_names_are_assets():
    from llm_cost_ops_ops.definitions import defs

    assets = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    stage = r"(?:manifests|deployed|schema|backups_verified|backups|status)"
    named = _mentions(rf"(?<![\w/<])((?:dev|staging|prod|<env>|<source>|ENV)_{stage})(?!\w)")
    named += _mentions(r"key:([\w*]+)")
    assert named, "no asset mentioned: the pattern is broken"
    concrete = [(doc, re.sub(r"^(<env>|<source>|ENV)", "dev", name)) for doc, name in named]
    missing = [
        (doc, name)
        for doc, name in concrete
        if not any(re.fullmatch(name.replace("*", ".*"), a) for a in assets)
    ]
    assert missing == []
    old = _mentions(r"\b((?:manifests|deployed|schema|backups)/(?:dev|staging|prod|<env>|ENV)\b)")
    assert old == [], "assets are keyed <env>_<stage> now"


def test_cli_runs_name_jobs():
    from llm_cost_ops_ops.definitions import defs

    jobs = {job.name for job in defs.resolve_all_job_defs()}
    pattern = r"llm-cost-ops-ops run ([a-z_]+)\b(?: (dev|staging|prod)\b)?"
    texts = {doc.name: _code(doc.read_text()) for doc in DOCS}
    texts |= {str(p.relative_to(ROOT)): p.read_text() for p in sorted((ROOT / "jobs").rglob("*.yaml"))}
    mentioned = [
        (where, "_".join(filter(None, found)))
        for where, text in texts.items()
        for found in re.findall(pattern, text)
    ]
    assert len(mentioned) > 30, "few CLI runs mentioned: the pattern is broken"
    assert [m for m in mentioned if m[1] not in jobs] == []


def test_make_targets_exist():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([A-Za-z0-9][\w-]*):", makefile, flags=re.M))
    mentioned = _mentions(r"\bmake ([a-z][\w-]*[a-z0-9])(?![\w*-])")
    assert mentioned, "no make target mentioned: the pattern is broken"
    assert [m for m in mentioned if m[1] not in targets] == []


def test_every_resource_is_documented():
    assert sorted(_documented_resources()) == sorted(r.__name__ for r in RESOURCES)


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.__name__)
def test_resource_fields_match_the_code(resource):
    documented = _documented_resources()[resource.__name__]
    in_code = set(resource.model_fields)
    assert sorted(in_code - documented) == [], f"{resource.__name__}: fields not in docs/configuration.md"
    assert sorted(documented - in_code) == [], f"{resource.__name__}: documented fields not in the code"


def test_environment_fields_match_the_code():
    documented = set(_table_rows(_section(CONFIGURATION.read_text(), "## `environments.yaml`")))
    in_code = _spec_fields(EnvironmentSpec) - {"name"}  # the key under `environments:`
    assert sorted(in_code - documented) == [], "environment fields not in docs/configuration.md"
    assert sorted(documented - in_code) == [], "documented environment fields not in the code"


def test_package_environment_variables_are_documented():
    source = "\n".join(p.read_text() for p in (ROOT / "llm_cost_ops_ops").rglob("*.py"))
    read = set(re.findall(r"\bLLM_COST_OPS_OPS_[A-Z0-9_]*[A-Z0-9]\b", source))
    assert read, "no variable found: the pattern is broken"
    assert sorted(read - set(re.findall(r"LLM_COST_OPS_OPS_\w+", CONFIGURATION.read_text()))) == []


def _defaults(section: str) -> dict[str, str]:
    """Field -> the default column of a `| field | type | default | meaning |` table, when that
    column is one plain value (a derived default such as "`true` for `prod`" is prose)."""
    defaults = {}
    for line in section.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        name = re.fullmatch(r"`([^`]+)`", cells[0]) if len(cells) == 4 else None
        value = re.fullmatch(r"`([^`]*)`|(null)", cells[2]) if name else None
        if name and value:
            defaults[name.group(1)] = value.group(1) if value.group(1) is not None else "null"
    return defaults


def _as_documented(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value == "":
        return '""'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, dict) and not value:
        return "{}"
    return str(value)


def _code_defaults(model: type[pydantic.BaseModel], prefix: str = "") -> dict[str, object]:
    defaults: dict[str, object] = {}
    for name, info in model.model_fields.items():
        nested = [
            arg
            for arg in (info.annotation, *getattr(info.annotation, "__args__", ()))
            if isinstance(arg, type) and issubclass(arg, pydantic.BaseModel)
        ]
        if nested:
            defaults |= _code_defaults(nested[0], f"{prefix}{name}.")
        elif not info.is_required():
            try:
                defaults[f"{prefix}{name}"] = info.get_default(call_default_factory=True)
            except ValueError:  # a default derived from other fields: the docs describe it in prose
                continue
    return defaults


def test_documented_defaults_are_the_code_defaults():
    text = CONFIGURATION.read_text()
    sections = [(_section(text, "## `environments.yaml`"), _code_defaults(EnvironmentSpec))]
    resources = _section(text, "## Resources")
    parts = re.split(r"^### `(\w+)`$", resources, flags=re.M)
    by_name = {r.__name__: r for r in RESOURCES}
    sections += [(body, _code_defaults(by_name[n])) for n, body in zip(parts[1::2], parts[2::2], strict=True)]
    compared, wrong = 0, []
    for section, code in sections:
        for field, documented in _defaults(section).items():
            if field in code:
                compared += 1
                if documented != _as_documented(code[field]):
                    wrong.append(f"{field}: docs say {documented}, the code {_as_documented(code[field])}")
    assert compared > 30, "few defaults compared: the table pattern is broken"
    assert wrong == []
