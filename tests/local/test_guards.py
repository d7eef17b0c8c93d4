"""Input guards (min_rows, valid_geometry) and export_by_key's unique_by, baked on the
fixture project tests/fixtures/guards: each fails the bake before anything is published."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest
from conftest import REPO, export_location, snapshot, write_inputs

from bakery.engine.runner import BakeError, bake
from bakery.plan import Plan, build_plan
from bakery.store import LocalStore
from bakery.workspace import load_workspace

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "guards"
HEADER = ["id", "name", "key", "lon", "lat", "first_letter"]
SQUARE = "POLYGON((0 0, 10 0, 10 10, 0 10, 0 0))"
BOWTIE = "POLYGON((0 0, 10 10, 10 0, 0 10, 0 0))"  # self-intersecting


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    root = tmp_path / "project"
    shutil.copytree(FIXTURE, root)
    return build_plan(load_workspace(root), "development")


def _csv(header: list[str], rows: list[tuple]) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return out.getvalue().encode()


def write(plan: Plan, store: LocalStore, points: list[tuple], areas: list[tuple]) -> None:
    store.write_bytes(plan.table("places.points").location + "points.csv", _csv(HEADER, points))
    store.write_bytes(
        plan.table("places.areas").location + "areas.csv", _csv(["area_id", "geometry"], areas)
    )


GOOD_POINTS = [
    ("u1", "one", "AB1", 1.0, 1.0, "A"),
    ("u2", "two", "AB1", 2.0, 2.0, "A"),
    ("u3", "three", "BC2", 3.0, 3.0, "B"),
]


def published(store: LocalStore) -> dict:
    """Bytes and mtimes of every file the layer publishes (its inputs left out)."""
    return snapshot(store.path("s3://guards-data/development/"))


def test_good_inputs_bake_and_export(plan: Plan, store: LocalStore):
    write(plan, store, GOOD_POINTS, [("sq", SQUARE)])
    result = bake(plan, ["places"], store)
    assert result.ok
    assert {s.id for s in result.steps} >= {"points_not_empty", "areas_valid", "by_key_unique"}
    assert sorted(p.name for p in store.path("s3://guards-data/development/by_key/").iterdir()) == [
        "AB1.parquet",
        "BC2.parquet",
    ]


def _fails(plan: Plan, store: LocalStore) -> str:
    with pytest.raises(BakeError) as info:
        bake(plan, ["places"], store)
    return str(info.value)


def test_an_input_with_a_header_and_no_rows_fails_before_publishing(plan, store):
    write(plan, store, GOOD_POINTS, [("sq", SQUARE)])
    bake(plan, ["places"], store)
    before = published(store)
    assert before
    write(plan, store, [], [("sq", SQUARE)])  # the file exists: a header line only
    message = _fails(plan, store)
    assert message == (
        "check places.points_not_empty failed: points is not empty: row_count=0, at_least=1"
    )
    assert published(store) == before  # published table and per-key files untouched


def test_invalid_geometry_fails_with_the_count_of_invalid_pieces(plan, store):
    areas = [("sq", SQUARE), ("bad-1", BOWTIE), ("bad-2", BOWTIE), ("none", "")]
    write(plan, store, GOOD_POINTS, areas)
    message = _fails(plan, store)
    assert message == (
        "check places.areas_valid failed: every areas.geometry is a valid polygon or multipolygon "
        "(ST_IsValid): "
        "invalid_pieces=2, first_invalid_area_id=bad-1"
    )
    assert not store.list("s3://guards-data/development/")


def test_conflicting_duplicates_in_two_partitions_fail_before_publishing(plan, store):
    write(plan, store, GOOD_POINTS, [("sq", SQUARE)])
    bake(plan, ["places"], store)
    before = published(store)
    assert before
    # u1 once under first letter A (key AB1) and once under B (key BC2), named differently:
    # the export, one partition at a time, would publish both.
    points = [*GOOD_POINTS, ("u1", "uno", "BC2", 1.0, 1.0, "B")]
    write(plan, store, points, [("sq", SQUARE)])
    message = _fails(plan, store)
    assert message == (
        "check places.by_key_unique failed: rows of located with the same id agree on key, "
        "name, area_ids (unique_by of by_key): id=u1, conflicting_versions=2, "
        "first_key=AB1, last_key=BC2"
    )
    assert published(store) == before


def test_a_conflict_inside_one_partition_fails_before_the_table_is_published(plan, store):
    points = [*GOOD_POINTS, ("u2", "deux", "AB1", 2.0, 2.0, "A")]
    write(plan, store, points, [("sq", SQUARE)])
    message = _fails(plan, store)
    assert message.startswith("check places.by_key_unique failed:")
    assert "id=u2" in message
    assert not store.list("s3://guards-data/development/")  # located never published


def test_identical_duplicates_pass_and_are_exported_once(plan, store):
    points = [*GOOD_POINTS, GOOD_POINTS[0]]
    write(plan, store, points, [("sq", SQUARE)])
    assert bake(plan, ["places"], store).ok
    import pyarrow.parquet as pq

    table = pq.read_table(store.path("s3://guards-data/development/by_key/AB1.parquet"))
    assert table.column("id").to_pylist() == ["u1", "u2"]


# ---------------------------------------------------------------- the repository's layers

ADDRESSES = [
    ("1", "1 High St", "CB1 9FN", "SRID=4326;POINT(0.5 0.5)", "R"),
    ("2", "2 High St", "CB1 9FN", "SRID=4326;POINT(5 5)", "R"),
]


@pytest.fixture
def repo_plan() -> Plan:
    return build_plan(load_workspace(REPO), "development")


def test_real_layers_refuse_a_ballots_csv_with_a_header_and_no_rows(repo_plan, store):
    write_inputs(repo_plan, store, ADDRESSES, [])
    with pytest.raises(BakeError) as info:
        bake(repo_plan, ["current_elections"], store, with_upstream=True)
    assert str(info.value) == (
        "check current_elections.ballots_not_empty failed: The export holds ballots; "
        'an empty one would publish "no elections" everywhere: row_count=0, at_least=1'
    )
    assert not store.list(export_location(repo_plan))


def test_real_layers_refuse_a_self_intersecting_ballot_polygon(repo_plan, store):
    ballots = [
        ("local.a.2026-05-07", "div:a", "POLYGON((0 0, 1 0, 1 1, 0 1, 0 0))", "Division"),
        ("local.b.2026-05-07", "div:b", "POLYGON((0 0, 10 10, 10 0, 0 10, 0 0))", "Division"),
    ]
    write_inputs(repo_plan, store, ADDRESSES, ballots)
    with pytest.raises(BakeError) as info:
        bake(repo_plan, ["current_elections"], store, with_upstream=True)
    assert str(info.value).endswith(
        "invalid_pieces=1, first_invalid_election_id=local.b.2026-05-07"
    )
    assert not store.list(export_location(repo_plan))
