"""The current_boundary_changes layer against a brute-force shapely oracle, its JSON texts,
its per-outcode files, the behaviour at the edges, and what a kill or a failed check leaves.

Behaviour chosen (and tested here):
- "within" is ST_Within on each subdivided piece: a point on a division's edge is in
  neither division, so it has no change from that division (nor has a point on the edge
  between two pieces of one division: EE's pieces are what the running system joins);
- a division type that exists only in the old set (abolished by the review) gives no
  change: the layer reports pairs (old division, new division) that hold the address.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import shapely

from bakery import sample_data
from bakery.democracy_club.samples import boundary_reviews as samples
from bakery.engine import bake
from bakery.engine.publish import STAGING
from bakery.plan import build_plan
from bakery.store import LocalStore
from bakery.workspace import load_workspace
from tests.local.conftest import RAW, REPO, export_location, snapshot

LAYER = "current_boundary_changes"
REVIEWS = f"{LAYER}.current_boundary_reviews_with_wkt"
CHANGES = f"{LAYER}.addresses_to_boundary_change"
JOINED = f"{LAYER}.current_boundary_reviews_joined_to_addressbase"
COLUMNS = ["uprn", "address", "postcode", "addressbase_source", "boundary_reviews", "outcode"]


@pytest.fixture(scope="module")
def plan(repo_plan):
    return repo_plan


def normalise(postcode: str) -> str:
    pc = postcode.strip().replace(" ", "").upper()
    return f"{pc[:-3]} {pc[-3:]}"


def addresses(store, plan) -> dict[str, dict]:
    """uprn -> {postcode, outcode, x, y} from the raw CSV (x, y None without a location)."""
    out = {}
    for f in store.list(plan.table(RAW).location):
        for uprn, address, postcode, location, _ in csv.reader(
            io.StringIO(store.read_bytes(f).decode())
        ):
            x = y = None
            if location.startswith("SRID=4326;POINT("):
                x, y = map(float, location[len("SRID=4326;POINT(") : -1].split())
            pc = normalise(postcode)
            out[uprn] = {"address": address, "postcode": pc, "outcode": pc.split()[0],
                         "x": x, "y": y}  # fmt: skip
    return out


def review_pieces(store, plan) -> dict[tuple, list]:
    """(review id, generation, division type, slug) -> shapely pieces, from the files."""
    location = plan.table(REVIEWS).location
    out = defaultdict(list)
    for f in store.list(location):
        parts = dict(p.split("=", 1) for p in f[len(location) :].split("/")[:-1])
        table = pq.read_table(io.BytesIO(store.read_bytes(f)))
        for slug, wkt in zip(
            table.column("division_slug").to_pylist(),
            table.column("division_boundary_wkt").to_pylist(),
            strict=True,
        ):
            key = (int(parts["boundary_review_id"]), parts["divisionset_generation"],
                   parts["division_type"], slug)  # fmt: skip
            out[key].append(shapely.from_wkt(wkt))
    return out


def oracle(store, plan) -> dict[str, set[tuple]]:
    """uprn -> {(review, division type, old slug, new slug, change_scenario)}, by brute force:
    every address against every piece, ST_Within semantics (the interior only)."""
    found = addresses(store, plan)
    uprns = np.array([u for u, a in found.items() if a["x"] is not None], dtype=object)
    xs = np.array([found[u]["x"] for u in uprns])
    ys = np.array([found[u]["y"] for u in uprns])
    members: dict[tuple, set[str]] = {}
    for key, pieces in review_pieces(store, plan).items():
        inside = np.zeros(len(uprns), bool)
        for piece in pieces:
            inside |= shapely.contains_xy(piece, xs, ys)
        members[key] = set(uprns[inside].tolist())
    out: dict[str, set[tuple]] = defaultdict(set)
    for (review, gen, kind, old_slug), old in members.items():
        if gen != "old":
            continue
        for (review2, gen2, kind2, new_slug), new in members.items():
            if (review2, gen2, kind2) != (review, "new", kind):
                continue
            same_boundary, same_name = old == new, old_slug == new_slug
            scenario = (
                ("NO_CHANGE" if same_name else "NAME_CHANGED")
                if same_boundary
                else ("BOUNDARY_CHANGED" if same_name else "BOTH_CHANGED")
            )
            for uprn in old & new:
                out[uprn].add((review, kind, old_slug, new_slug, scenario))
    return out


def read_table(store, plan, ref: str) -> list[dict]:
    import duckdb

    path = store.path(plan.table(ref).location)
    return (
        duckdb.sql(f"SELECT * FROM read_parquet('{path}/**/*.parquet', hive_partitioning=true)")
        .to_arrow_table()
        .to_pylist()
    )


def layer_output(store, plan) -> dict[str, set[tuple]]:
    out: dict[str, set[tuple]] = defaultdict(set)
    for row in read_table(store, plan, JOINED):
        for text in row["boundary_reviews"]:
            review = json.loads(text)
            for c in review["changes"]:
                out[row["uprn"]].add((review["boundary_review_id"], c["division_type"],
                                      c["old_division_slug"], c["new_division_slug"],
                                      c["change_scenario"]))  # fmt: skip
    return out


@pytest.fixture(scope="module")
def baked(plan, tmp_path_factory):
    store = LocalStore(tmp_path_factory.mktemp("boundary") / "store")
    sample_data.write_sample_data(plan, store, addresses=20_000, ballots=20, seed=5, reviews=6)
    store.write_bytes(export_location(plan, LAYER) + "ZZ99.parquet", b"stale")
    result = bake(plan, [LAYER], store, with_upstream=True)
    assert result.ok
    return store


def test_every_address_has_the_oracles_changes(plan, baked):
    expected = oracle(baked, plan)
    actual = layer_output(baked, plan)
    assert dict(actual) == dict(expected)
    # the sample meets every case: all four scenarios, addresses in two reviews, and
    # addresses in none
    scenarios = {c[4] for changes in expected.values() for c in changes}
    assert scenarios == {"NO_CHANGE", "NAME_CHANGED", "BOUNDARY_CHANGED", "BOTH_CHANGED"}
    assert any(len({c[0] for c in changes}) > 1 for changes in expected.values())
    joined = read_table(baked, plan, JOINED)
    assert len(joined) == 20_000 and any(r["boundary_reviews"] == [] for r in joined)
    # one row per (address, old, new) in the intermediate table, with the same changes
    rows = read_table(baked, plan, CHANGES)
    assert len(rows) == sum(len(c) for c in expected.values())


def test_json_texts_are_compact_sorted_and_ordered(plan, baked):
    """As Athena writes them: json_format(CAST(map AS JSON)) is compact, map keys sorted;
    reviews by id, changes by division type then slugs."""
    items = {r.id: r for r in samples.reviews(6, 5)}
    seen = 0
    for row in read_table(baked, plan, JOINED):
        reviews = [json.loads(t) for t in row["boundary_reviews"]]
        for text, review in zip(row["boundary_reviews"], reviews, strict=True):
            assert text == json.dumps(review, separators=(",", ":"), sort_keys=True,
                                      ensure_ascii=False)  # fmt: skip
            keys = [(c["division_type"], c["old_division_slug"], c["new_division_slug"])
                    for c in review["changes"]]  # fmt: skip
            assert keys == sorted(keys)
            details = items[review["boundary_review_id"]].review
            assert review["boundary_review_details"] == {
                k: details[k]
                for k in ("consultation_url", "legislation_title", "effective_date",
                          "organisation_name", "organisation_official_name", "organisation_gss")
            }  # fmt: skip
            seen += 1
        ids = [r["boundary_review_id"] for r in reviews]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert seen


def test_outcode_files_follow_the_empty_file_rule_and_stale_ones_go(plan, baked):
    changes = oracle(baked, plan)
    by_outcode: dict[str, list] = defaultdict(list)
    for uprn, a in addresses(baked, plan).items():
        by_outcode[a["outcode"]].append(uprn)
    folder = baked.path(export_location(plan, LAYER))
    names = {f.stem for f in folder.glob("*.parquet") if not f.name.startswith(".")}
    assert names == set(by_outcode)  # every outcode has a file; ZZ99 (stale) is gone
    with_reviews = 0
    for outcode, uprns in by_outcode.items():
        table = pq.read_table(folder / f"{outcode}.parquet")
        if not any(changes.get(u) for u in uprns):
            assert table.num_columns == 0 and table.num_rows == 0, outcode
            continue
        with_reviews += 1
        assert table.column_names == COLUMNS
        rows = table.to_pylist()
        assert sorted(r["uprn"] for r in rows) == sorted(uprns)
        keys = [(r["postcode"], r["uprn"]) for r in rows]
        assert keys == sorted(keys)
        assert {r["outcode"] for r in rows} == {outcode}
    assert with_reviews and with_reviews < len(by_outcode)


def test_a_division_type_only_in_the_old_set_gives_no_change(plan, baked):
    pieces = review_pieces(baked, plan)
    abolished = {(r, k) for (r, g, k, _) in pieces if g == "old"} - {
        (r, k) for (r, g, k, _) in pieces if g == "new"
    }
    assert abolished, "the sample should have a division type abolished by its review"
    found = addresses(baked, plan)
    xs = np.array([a["x"] for a in found.values() if a["x"] is not None])
    ys = np.array([a["y"] for a in found.values() if a["x"] is not None])
    for review, kind in abolished:
        old = [p for (r, g, k, _), ps in pieces.items() if (r, k) == (review, kind) for p in ps]
        assert any(shapely.contains_xy(p, xs, ys).any() for p in old)  # it holds addresses
        for changes in layer_output(baked, plan).values():
            assert not [c for c in changes if (c[0], c[1]) == (review, kind)]


def _edge_inputs(plan, store) -> None:
    """Two old divisions side by side (x 0..1 and 1..2) and one new division over both
    (x 0..2), each cut into two pieces at y 51.5; addresses inside, on the old divisions'
    shared edge (inside the new one), on the outer edge, at a corner, on the edge between
    two pieces of one division."""
    rows = [
        ("1", "Inside West", "AB1 1AA", "SRID=4326;POINT(0.5 51.3)", "R"),
        ("2", "Shared Edge", "AB1 1AB", "SRID=4326;POINT(1 51.3)", "R"),
        ("3", "Outer Edge", "AB1 1AD", "SRID=4326;POINT(0 51.3)", "R"),
        ("4", "Corner", "AB1 1AE", "SRID=4326;POINT(2 52)", "R"),
        ("5", "Inside East", "AB1 1AF", "SRID=4326;POINT(1.5 51.7)", "R"),
        ("6", "Nowhere", "ZZ1 1ZZ", "SRID=4326;POINT(5 55)", "R"),
        ("7", "Piece Edge", "AB1 1AG", "SRID=4326;POINT(0.5 51.5)", "R"),
    ]
    raw = io.StringIO()
    csv.writer(raw, lineterminator="\n").writerows(rows)
    store.write_bytes(plan.table(RAW).location + "raw.csv", raw.getvalue().encode())

    def division(slug: str, x0: float, x1: float) -> samples.Division:
        return samples.Division(
            slug, slug.title(), f"E05{slug}", samples._pieces(x0, 51, x1, 52, 2)
        )

    old = samples.DivisionSet(1, None, {"DIW": [division("west", 0, 1), division("east", 1, 2)]})
    new = samples.DivisionSet(2, None, {"DIW": [division("town", 0, 2)]})
    details = {c: None for c in samples.COLUMNS[:11]}
    for path, data in samples.files([samples.Review(7, details, old, new)]).items():
        store.write_bytes(plan.table(REVIEWS).location + path, data)


def test_points_on_a_division_edge_are_not_within(plan, tmp_path):
    store = LocalStore(tmp_path / "store")
    _edge_inputs(plan, store)
    assert bake(plan, [LAYER], store, with_upstream=True).ok
    got = {u: sorted(c) for u, c in layer_output(store, plan).items()}
    assert got == {
        "1": [(7, "DIW", "west", "town", "BOTH_CHANGED")],
        "5": [(7, "DIW", "east", "town", "BOTH_CHANGED")],
    }
    files = {f.stem: pq.read_table(f) for f in store.path(export_location(plan, LAYER)).glob("*")}
    assert files["ZZ1"].num_columns == 0  # an outcode where no address has a review
    ab1 = files["AB1"].to_pylist()
    assert [r["uprn"] for r in ab1] == ["1", "2", "3", "4", "5", "7"]
    assert [len(r["boundary_reviews"]) for r in ab1] == [1, 0, 0, 0, 1, 0]
    text = ab1[0]["boundary_reviews"][0]
    assert text.startswith('{"boundary_review_details":{"consultation_url":null,')
    assert '"boundary_review_id":7,"changes":[{"change_scenario":"BOTH_CHANGED",' in text


def _published(store, plan) -> dict:
    return {ref: read_table(store, plan, ref) for ref in (CHANGES, JOINED)}


def _mass_change_allowed(root) -> Path:
    """A copy of the repository's layers whose guards allow the mass change these tests
    make (other reviews replace every published one), as an operator raises them for one
    run (docs/cutover.md): the property tested here is what a kill or failure leaves."""
    import shutil

    shutil.copytree(REPO / "layers", root / "layers")
    shutil.copy(REPO / "bakery.yaml", root / "bakery.yaml")
    layer = root / "layers" / f"{LAYER}.yaml"
    text = layer.read_text().replace("max_emptied_percent: 0.1", "max_emptied_percent: 100")
    layer.write_text(text.replace("    delete_stale: true\n", "    delete_stale: true\n"
                                  "    max_vanished_percent: 100\n"))  # fmt: skip
    return root


def test_killed_mid_fan_out_leaves_published_outputs_unchanged(plan, tmp_path):
    store = LocalStore(tmp_path / "store")
    sample_data.write_sample_data(plan, store, addresses=3000, ballots=20, seed=3, reviews=6)
    assert bake(plan, [LAYER], store, with_upstream=True).ok
    before_tables = _published(store, plan)
    samples.write(plan.table(REVIEWS), store, 4, [], seed=99)  # a bake would change outputs
    before = snapshot(store.root)
    # the first iteration to finish pauses; the others finish and wait: mid-fan-out
    root = _mass_change_allowed(tmp_path / "project")
    env = {**os.environ, "BAKERY_TEST_PAUSE_AT": "addresses_to_boundary_change",
           "BAKERY_PROJECT": str(root)}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-c", "from bakery.cli import main; main()", "bake", LAYER,
         "--store", str(store.root)],
        cwd=REPO, env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline, seen = time.time() + 120, ""
    while time.time() < deadline:
        line = proc.stderr.readline()
        seen += line
        if "paused at" in line or not line:
            break
    assert "paused at" in seen, seen
    # the bake is staging (the first iteration to finish may have had no rows to write,
    # so its files are not asserted: the property under test is what follows the kill)
    assert (store.root / "pollingstations.private.data" / STAGING).is_dir()
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert snapshot(store.root) == before
    assert _published(store, plan) == before_tables
    result = bake(build_plan(load_workspace(root), "development"), [LAYER], store)
    assert any("leftover staging" in n for n in result.notes)
    assert _published(store, plan) != before_tables


FAILING_CHECK = """\
  - type: check
    id: no_address_in_a_review
    description: No address is in a boundary review.
    check:
      kind: no_rows
      sql: >-
        SELECT uprn FROM {{ ref('current_boundary_reviews_joined_to_addressbase') }}
        WHERE cardinality(boundary_reviews) > 0 ORDER BY uprn

  - type: export_by_key
"""


def test_failed_check_leaves_published_outputs_unchanged(plan, tmp_path):
    store = LocalStore(tmp_path / "store")
    sample_data.write_sample_data(plan, store, addresses=3000, ballots=20, seed=3, reviews=6)
    assert bake(plan, [LAYER], store, with_upstream=True).ok
    before_tables = _published(store, plan)
    samples.write(plan.table(REVIEWS), store, 4, [], seed=99)
    before = snapshot(store.root)
    root = _mass_change_allowed(tmp_path / "project")
    layer = root / "layers" / f"{LAYER}.yaml"
    layer.write_text(layer.read_text().replace("  - type: export_by_key\n", FAILING_CHECK))
    failing = build_plan(load_workspace(root), "development")
    with pytest.raises(Exception, match=f"check {LAYER}.no_address_in_a_review failed"):
        bake(failing, [LAYER], store)
    assert snapshot(store.root) == before
    assert _published(store, plan) == before_tables


README_BAKE = (
    "uv run bakery bake current_elections current_boundary_changes --with-upstream --sample"
)
README_LOOKUP = 'uv run bakery lookup "NR1 4FA"'


def test_readme_commands_bake_all_layers_and_lookup_shows_ballots_and_changes(
    tmp_path, monkeypatch
):
    from typer.testing import CliRunner

    from bakery.cli.common import app

    readme = (REPO / "README.md").read_text()
    assert README_BAKE in readme and README_LOOKUP in readme
    monkeypatch.setenv("BAKERY_STORE", str(tmp_path / "store"))
    monkeypatch.delenv("BAKERY_PROJECT", raising=False)
    runner = CliRunner()
    baked = runner.invoke(app, README_BAKE.split()[3:] + ["--json"], catch_exceptions=False)
    assert baked.exit_code == 0, baked.stderr
    assert set(json.loads(baked.stdout)["layers"]) == {"addressbase", "current_elections", LAYER}
    looked = runner.invoke(app, ["lookup", "NR1 4FA", "--json"], catch_exceptions=False)
    assert looked.exit_code == 0, looked.stderr
    found = json.loads(looked.stdout)
    assert found["addresses"]
    assert all(a["ballot_ids"] and a["boundary_reviews"] for a in found["addresses"])
    # what the APIs read: the per-outcode file's JSON texts, parsed
    store = LocalStore(tmp_path / "store")
    plan = build_plan(load_workspace(REPO), "development")
    rows = pq.read_table(io.BytesIO(store.read_bytes(found["boundary_changes_file"]))).to_pylist()
    want = {r["uprn"]: [json.loads(t) for t in r["boundary_reviews"]] for r in rows
            if r["postcode"] == "NR1 4FA"}  # fmt: skip
    assert {a["uprn"]: a["boundary_reviews"] for a in found["addresses"]} == want
    assert found["boundary_changes_file"].startswith(export_location(plan, LAYER))
    text = runner.invoke(app, ["lookup", "NR1 4FA"], catch_exceptions=False).stdout
    assert "ballots" in text and "boundary changes" in text
    scenario = found["addresses"][0]["boundary_reviews"][0]["changes"][0]["change_scenario"]
    assert scenario in text
