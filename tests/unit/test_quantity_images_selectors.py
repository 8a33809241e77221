"""Small pure helpers: quantities, image tags, label selectors, and the bundle store.

Cases:
- parse_quantity: binary and decimal suffixes, milli-units, exponents, invalid input;
- same_quantity: equal amounts in different spellings, None, unparsable values;
- image_tag: registry ports, digests, untagged references;
- is_pinned: digests and fixed tags pinned, moving and missing tags not;
- selector_matches: matchLabels, each matchExpressions operator, empty selector;
- BundleStore: put/get round trip keeps objects, sources and warnings; putting twice stores once;
  a tampered text, a missing bundle and a malformed digest raise BundleStoreError.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from llm_cost_ops_ops.bundles.images import image_tag, is_pinned
from llm_cost_ops_ops.bundles.model import ManifestObject, RenderedBundle
from llm_cost_ops_ops.bundles.quantity import parse_quantity, same_quantity
from llm_cost_ops_ops.bundles.selectors import is_empty_selector, selector_matches
from llm_cost_ops_ops.bundles.store import BundleStore
from llm_cost_ops_ops.errors import BundleStoreError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("250m", Decimal("0.25")),
        ("1", Decimal(1)),
        (2, Decimal(2)),
        ("1.5", Decimal("1.5")),
        ("1Ki", Decimal(1024)),
        ("1.5Gi", Decimal(1536 * 2**20)),
        ("1G", Decimal(10**9)),
        ("1k", Decimal(1000)),
        ("1e3", Decimal(1000)),
        ("100n", Decimal("1E-7")),
        (" 4Gi ", Decimal(4 * 2**30)),
    ],
)
def test_parse_quantity(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "Gi", "1GB", "one", "1.2.3", "1 Gi", "1gi"])
def test_parse_quantity_refuses_what_is_not_a_quantity(text):
    with pytest.raises(ValueError, match="invalid quantity"):
        parse_quantity(text)


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("1536Mi", "1.5Gi", True),
        ("1000m", "1", True),
        ("1000m", 1, True),
        ("4Gi", "4096Mi", True),
        ("1Gi", "1G", False),
        ("500m", "0.4", False),
        (None, None, True),
        (None, "1Gi", False),
        ("lots", "lots", False),
    ],
)
def test_same_quantity(a, b, same):
    assert same_quantity(a, b) is same


@pytest.mark.parametrize(
    ("image", "tag"),
    [
        ("nginx", None),
        ("nginx:1.27", "1.27"),
        ("registry:5000/team/app", None),
        ("registry:5000/team/app:2.0", "2.0"),
        ("ghcr.io/org/app:1.4.2@sha256:" + "b" * 64, "1.4.2"),
        ("ghcr.io/org/app@sha256:" + "b" * 64, None),
    ],
)
def test_image_tag(image, tag):
    assert image_tag(image) == tag


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("postgres:16.6-alpine", True),
        ("ghcr.io/org/app@sha256:" + "c" * 64, True),
        ("registry:5000/app:1.0", True),
        ("registry:5000/app", False),
        ("nginx", False),
        ("nginx:latest", False),
        ("nginx:Latest", False),
        ("app:main", False),
        ("app:nightly", False),
    ],
)
def test_is_pinned(image, pinned):
    assert is_pinned(image) is pinned


LABELS = {"app.kubernetes.io/name": "llm-cost-ops", "app.kubernetes.io/component": "api"}
NAME, COMPONENT = "app.kubernetes.io/name", "app.kubernetes.io/component"


def _expr(key: str, operator: str, *values: str) -> dict:
    return {"matchExpressions": [{"key": key, "operator": operator, "values": list(values)}]}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        (None, True),
        ({}, True),
        ({"matchLabels": {NAME: "llm-cost-ops"}}, True),
        ({"matchLabels": {NAME: "postgres"}}, False),
        ({"matchLabels": {"tier": "web"}}, False),
        (_expr(COMPONENT, "In", "api", "x"), True),
        (_expr(COMPONENT, "In", "db"), False),
        (_expr("tier", "In", "web"), False),
        (_expr(COMPONENT, "NotIn", "api"), False),
        (_expr("tier", "NotIn", "web"), True),
        (_expr(NAME, "Exists"), True),
        (_expr("tier", "Exists"), False),
        (_expr("tier", "DoesNotExist"), True),
        (_expr(NAME, "DoesNotExist"), False),
        ({"matchLabels": {NAME: "llm-cost-ops"}, **_expr("tier", "Exists")}, False),
    ],
)
def test_selector_matches(selector, matches):
    assert selector_matches(selector, LABELS) is matches


@pytest.mark.parametrize(
    ("selector", "empty"),
    [(None, True), ({}, True), ({"matchLabels": {}}, True), ({"matchLabels": {"a": "b"}}, False),
     ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, False)],
)  # fmt: skip
def test_is_empty_selector(selector, empty):
    assert is_empty_selector(selector) is empty


def _bundle() -> RenderedBundle:
    objects = [
        ManifestObject(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}}, "manifests/base/ns.yaml"
        ),
        ManifestObject(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "c", "namespace": "ns"},
                "data": {"a": "1"},
            },
            "manifests/base/configmap.yaml",
        ),
    ]
    return RenderedBundle.from_objects("staging", objects, ("# Warning: something",))


def test_store_round_trip(tmp_path):
    store, bundle = BundleStore(tmp_path), _bundle()
    path = store.put(bundle)
    assert path == tmp_path / "sha256" / f"{bundle.digest.removeprefix('sha256:')}.yaml"
    loaded = store.get(bundle.digest)
    assert loaded == bundle


def test_store_keeps_one_copy_per_digest(tmp_path):
    store = BundleStore(tmp_path)
    store.put(_bundle())
    store.put(_bundle())
    assert sorted(p.suffix for p in (tmp_path / "sha256").iterdir()) == [".json", ".yaml"]


def test_tampered_text_is_refused(tmp_path):
    store, bundle = BundleStore(tmp_path), _bundle()
    path = store.put(bundle)
    path.write_text(path.read_text().replace("a: '1'", "a: '2'"))
    with pytest.raises(BundleStoreError, match="does not match its digest"):
        store.get(bundle.digest)


def test_missing_bundle(tmp_path):
    with pytest.raises(BundleStoreError, match="is not in the store"):
        BundleStore(tmp_path).get("sha256:" + "0" * 64)


@pytest.mark.parametrize("digest", ["md5:abc", "sha256:abc", "0" * 64])
def test_malformed_digest(tmp_path, digest):
    with pytest.raises(BundleStoreError, match="not a sha256 digest"):
        BundleStore(tmp_path).get(digest)
