"""An export that replaces a published product may lose only so much of it in one run
(issue 19, item 1): an empty boundary-reviews export fails current_boundary_changes with
every published file unchanged, by each of its three guards (the input's min_rows, its
publish_guard, and the vanish guard every export_by_key implies); and a new layer that
declares no limit refuses losing everything by default, while its first publish passes."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bakery import sample_data
from bakery.engine import BakeError, bake
from bakery.plan import build_plan
from bakery.store import LocalStore
from bakery.workspace import load_workspace
from tests.local.conftest import PROJECT, REPO, export_location, snapshot

LAYER = "current_boundary_changes"
REVIEWS = f"{LAYER}.current_boundary_reviews_with_wkt"


def non_empty_files(store: LocalStore, location: str) -> int:
    files = [f for f in store.list(location) if f.endswith(".parquet")]
    return sum(pq.read_metadata(io.BytesIO(store.read_bytes(f))).num_rows > 0 for f in files)


def empty_reviews(plan, store: LocalStore) -> str:
    """The reviews export replaced by one 0-row file of the same schema."""
    table = plan.table(REVIEWS)
    store.delete_prefix(table.location)
    schema = pa.schema([(c.name, pa.string()) for c in table.columns])
    buf = io.BytesIO()
    pq.write_table(schema.empty_table(), buf)
    key = "boundary_review_id=1/divisionset_generation=old/division_type=DIW/part-0.parquet"
    store.write_bytes(table.location + key, buf.getvalue())
    return (table.location + key).removeprefix("s3://")


def without_steps(root: Path, ids: list[str]) -> Path:
    """A copy of the repository's layers with these checks of LAYER removed."""
    shutil.copytree(REPO / "layers", root / "layers")
    shutil.copy(REPO / "bakery.yaml", root / "bakery.yaml")
    layer = root / "layers" / f"{LAYER}.yaml"
    text = layer.read_text()
    for step_id in ids:
        start = text.index(f"  - type: check\n    id: {step_id}\n")
        end = text.index("  - type: ", start + 1)
        text = text[:start] + text[end:]
    layer.write_text(text)
    return root


@pytest.fixture(scope="module")
def baked(repo_plan, tmp_path_factory):
    """A published current_boundary_changes, then an empty reviews export."""
    store = LocalStore(tmp_path_factory.mktemp("vanish") / "store")
    sample_data.write_sample_data(repo_plan, store, addresses=3000, ballots=20, seed=3, reviews=6)
    assert bake(repo_plan, [LAYER], store, with_upstream=True).ok
    location = export_location(repo_plan, LAYER)
    assert non_empty_files(store, location) > 0
    emptied = empty_reviews(repo_plan, store)
    return store, emptied


def test_empty_reviews_export_exits_1_and_publishes_nothing(repo_plan, baked):
    store, _ = baked
    before = snapshot(store.root)
    done = subprocess.run(
        [sys.executable, "-m", "bakery", "bake", LAYER, "--store", str(store.root)],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert f"check {LAYER}.reviews_not_empty failed" in done.stderr
    assert snapshot(store.root) == before


@pytest.mark.parametrize(
    ("removed", "failing", "says"),
    [
        # the layer's own publish_guard, were the input guard missing
        (["reviews_not_empty"], "changes_not_lost", "publish guard: "),
        # the vanish guard the export implies, in a layer that declares neither
        (
            ["reviews_not_empty", "changes_not_lost"],
            "export_outcodes_not_vanished",
            "of export_outcodes would become empty or be deleted (100.0 %, more than the 50 %",
        ),
    ],
)
def test_each_guard_alone_refuses_the_empty_export(baked, tmp_path, removed, failing, says):
    store, _ = baked
    plan = build_plan(load_workspace(without_steps(tmp_path / "p", removed)), "development")
    location = export_location(plan, LAYER)
    had = non_empty_files(store, location)
    before = snapshot(store.root)
    with pytest.raises(BakeError) as err:
        bake(plan, [LAYER], store)
    message = str(err.value)
    assert message.startswith(f"check {LAYER}.{failing} failed: "), message
    assert says in message
    if failing == "export_outcodes_not_vanished":
        assert f"vanish guard: {had} of {had} published non-empty outcode files" in message
    assert snapshot(store.root) == before
    assert non_empty_files(store, location) == had


# A new layer, written the way a user would: no guard, no declared limit.
NEW_LAYER = """\
name: shops
description: Shops per town.
steps:
  - type: glue_table
    name: shops_raw
    location: s3://{{ buckets.results }}/shops_raw/
    format: csv
    csv: {header: true}
    columns:
      - {name: town, type: string}
      - {name: shop, type: string}
  - type: glue_table
    name: shops_by_town
    location: s3://{{ buckets.private_data }}/shops_by_town/
    format: parquet
    columns:
      - {name: town, type: string}
      - {name: shop, type: string}
  - type: athena_query
    id: copy_shops
    sql: SELECT town, shop FROM {{ ref('shops_raw') }}
    into: shops_by_town
  - type: export_by_key
    id: export_towns
    table: shops_by_town
    key: town
    destination: s3://{{ buckets.private_data }}/shops_export/
    columns: [town, shop]
"""


@pytest.fixture
def shops(tmp_path):
    root = tmp_path / "project"
    shutil.copytree(PROJECT, root)
    (root / "layers" / "shops.yaml").write_text(NEW_LAYER)
    plan = build_plan(load_workspace(root), "development")
    store = LocalStore(tmp_path / "store")
    raw = plan.table("shops.shops_raw").location + "shops.csv"
    return plan, store, raw


def write_shops(store: LocalStore, uri: str, rows: list[tuple[str, str]]) -> None:
    text = "town,shop\n" + "".join(f"{t},{s}\n" for t, s in rows)
    store.write_bytes(uri, text.encode())


def test_new_layer_without_a_limit_refuses_losing_everything(shops):
    plan, store, raw = shops
    guard = next(s for s in plan.layer("shops").steps if s.id == "export_towns_not_vanished")
    assert "the first publish passes: nothing is published yet" in guard.description
    write_shops(store, raw, [("Ayr", "baker"), ("Bath", "grocer"), ("Bath", "florist")])
    assert bake(plan, ["shops"], store).ok  # the first publish: nothing can vanish
    before = snapshot(store.root)
    write_shops(store, raw, [("Cork", "baker")])  # a wrong export: every town changes
    with pytest.raises(BakeError) as err:
        bake(plan, ["shops"], store)
    assert str(err.value) == (
        "check shops.export_towns_not_vanished failed: vanish guard: 2 of 2 published town "
        "files of export_towns would no longer be exported (100.0 %, more than the 50 % "
        "max_vanished_percent allows); nothing was published"
    )
    after = snapshot(store.root)
    key = raw.removeprefix("s3://")
    after.pop(key), before.pop(key)
    assert after == before


def test_losing_up_to_the_limit_passes(shops):
    plan, store, raw = shops
    write_shops(store, raw, [("Ayr", "baker"), ("Bath", "grocer")])
    assert bake(plan, ["shops"], store).ok
    write_shops(store, raw, [("Bath", "grocer")])  # 1 of 2 towns: 50 %, not more
    assert bake(plan, ["shops"], store).ok
    assert [f.rsplit("/", 1)[1] for f in store.list(export_location(plan, "shops"))] == [
        "Bath.parquet"
    ]
