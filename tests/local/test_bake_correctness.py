"""The baked current_elections output against an independent oracle (shapely, brute force),
and the chosen behaviour at the edges: boundaries, holes, NULL locations, odd postcodes."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
import shapely

from bakery import sample_data
from bakery.engine import bake
from tests.local.conftest import (
    BALLOTS,
    RAW,
    export_location,
    read_joined,
    read_outcodes,
    write_inputs,
)


@pytest.fixture(scope="module")
def plan(repo_plan):
    """The repository's current_elections layer itself (not the tests' project)."""
    return repo_plan


def normalise(postcode: str) -> str:
    pc = postcode.strip().replace(" ", "").upper()
    return f"{pc[:-3]} {pc[-3:]}"


def oracle(store, plan) -> dict[str, dict]:
    """uprn -> {postcode, outcode, address, ballot_ids} computed with shapely only."""
    raw_files = store.list(plan.table(RAW).location)
    rows = [r for f in raw_files for r in csv.reader(io.StringIO(store.read_bytes(f).decode()))]
    ballots_files = store.list(plan.table(BALLOTS).location)
    polys = []
    for f in ballots_files:
        for r in csv.DictReader(io.StringIO(store.read_bytes(f).decode())):
            if r["geometry"]:
                polys.append((r["election_id"], shapely.from_wkt(r["geometry"])))
    ids = np.array([p[0] for p in polys], dtype=object)
    geoms = np.array([p[1] for p in polys], dtype=object)
    out = {}
    for uprn, address, postcode, location, _ in rows:
        pc = normalise(postcode)
        point = None
        if location.startswith("SRID=4326;POINT("):
            lon, lat = map(float, location[len("SRID=4326;POINT(") : -1].split())
            point = shapely.Point(lon, lat)
        inside = shapely.contains(geoms, point) if point is not None else np.zeros(len(ids), bool)
        out[uprn] = {
            "postcode": pc,
            "outcode": pc.split(" ")[0],
            "address": address,
            "ballot_ids": sorted(set(ids[inside].tolist())),
        }
    return out


def test_bake_matches_shapely_oracle(plan, store):
    sample_data.write_sample_data(plan, store, addresses=3000, ballots=150, seed=7)
    # a stale outcode file from an earlier release: it must go
    store.write_bytes(export_location(plan) + "ZZ99.parquet", b"stale")
    result = bake(plan, ["current_elections"], store, with_upstream=True)
    assert result.ok
    expected = oracle(store, plan)
    joined = read_joined(store, plan)

    assert set(joined) == set(expected)
    assert sum(1 for e in expected.values() if e["ballot_ids"]) > 300  # a meaningful test
    assert sum(1 for e in expected.values() if len(e["ballot_ids"]) > 1) > 100
    for uprn, want in expected.items():
        got = joined[uprn]
        assert list(got["ballot_ids"]) == want["ballot_ids"], uprn
        assert got["postcode"] == want["postcode"]
        assert got["outcode"] == want["outcode"]
        assert got["first_letter"] == want["postcode"][0]

    files = read_outcodes(store, plan)
    assert "ZZ99" not in files
    by_outcode: dict[str, list] = {}
    for uprn, want in expected.items():
        by_outcode.setdefault(want["outcode"], []).append((want["postcode"], uprn, want))
    assert set(files) == set(by_outcode)
    empties = 0
    for outcode, members in by_outcode.items():
        table = files[outcode]
        if not any(m[2]["ballot_ids"] for m in members):
            assert table.num_columns == 0 and table.num_rows == 0, outcode
            empties += 1
            continue
        assert table.column_names == [
            "uprn",
            "address",
            "postcode",
            "addressbase_source",
            "ballot_ids",
            "outcode",
        ]
        members.sort(key=lambda m: (m[0], m[1]))
        assert table.column("uprn").to_pylist() == [m[1] for m in members]
        assert [list(b) for b in table.column("ballot_ids").to_pylist()] == [
            m[2]["ballot_ids"] for m in members
        ]
    assert 0 < empties < len(by_outcode)


# ---------------------------------------------------------------- edge cases

A = "POLYGON((0 51, 1 51, 1 52, 0 52, 0 51))"
A_NORTH = "POLYGON((0 52, 1 52, 1 53, 0 53, 0 52))"  # a second piece of ballot A
B = "POLYGON((1 51, 2 51, 2 52, 1 52, 1 51))"
ORG = "POLYGON((0 51, 2 51, 2 53, 0 53, 0 51), (0.4 51.4, 0.4 51.6, 0.6 51.6, 0.6 51.4, 0.4 51.4))"
C = "MULTIPOLYGON(((3 51, 4 51, 4 52, 3 52, 3 51)), ((5 51, 6 51, 6 52, 5 52, 5 51)))"
BALLOT_ROWS = [
    ("local.a.2026-05-07", "div:a", A, "Division"),
    ("local.a.2026-05-07", "div:a", A_NORTH, "Division"),
    ("local.b.2026-05-07", "div:b", B, "Division"),
    ("mayor.x.2026-05-07", "org:x", ORG, "Organisation"),
    ("local.c.2026-05-07", "div:c", C, "Division"),
    ("ref.none.2026-05-07", "", "", "None"),
]


def pt(lon: float, lat: float) -> str:
    return f"SRID=4326;POINT({lon} {lat})"


ADDRESSES = [
    ("1", "1 Inside A", "AB1 1AA", pt(0.2, 51.2), "R"),
    ("2", "2 On the A|B boundary", "AB1 1AA", pt(1, 51.5), "R"),
    ("3", "3 In the hole of X", "AB1 1AB", pt(0.5, 51.5), "R"),
    ("4", "4 No location", "ZZ1 1AA", "", "R"),
    ("5", "5 Not a point", "ZZ1 1AB", "somewhere", "R"),
    ("6", "6 Lower case", "ab1 2cd", pt(0.25, 51.25), "R"),
    ("7", "7 No space", "AB12CE", pt(0.3, 51.3), "R"),
    ("8", "8 Second part of C", "CD1 1AA", pt(5.5, 51.5), "R"),
    ("9", "9 Nowhere", "CD1 1AB", pt(10, 51), "R"),
    ("10", "10 On X's outer boundary", "EF1 1AA", pt(0, 51.5), "R"),
    ("11", "11 On the edge between A's pieces", "EF1 1AB", pt(0.5, 52), "R"),
    ("12", "12 On a corner of A", "EF1 1AC", pt(0, 51), "R"),
    ("13", "13 Just inside A", "EF1 1AD", pt(0.000001, 51.5), "R"),
]


@pytest.fixture
def edge(plan, store):
    write_inputs(plan, store, ADDRESSES, BALLOT_ROWS)
    bake(plan, ["current_elections"], store, with_upstream=True)
    return read_joined(store, plan), read_outcodes(store, plan)


def ids(joined, uprn):
    return list(joined[uprn]["ballot_ids"])


def test_point_inside_overlapping_ballots_gets_both_sorted(edge):
    joined, _ = edge
    assert ids(joined, "1") == ["local.a.2026-05-07", "mayor.x.2026-05-07"]


def test_boundary_points_are_not_contained(edge):
    """Chosen behaviour = DuckDB's (and Athena's) ST_Contains: a point on a polygon's
    boundary is not inside it. So a point on the shared edge of wards A and B gets
    neither ward (only the council around both); a point on the council's outer edge
    or corner gets nothing; a point on the edge between two *pieces* of one subdivided
    ballot gets nothing from that ballot either."""
    joined, _ = edge
    assert ids(joined, "2") == ["mayor.x.2026-05-07"]
    assert ids(joined, "10") == []
    assert ids(joined, "12") == []
    # on the shared edge of A's two pieces, inside X: A is lost, X kept
    assert ids(joined, "11") == ["mayor.x.2026-05-07"]
    assert ids(joined, "13") == ["local.a.2026-05-07", "mayor.x.2026-05-07"]


def test_hole_and_multipolygon(edge):
    joined, _ = edge
    assert ids(joined, "3") == ["local.a.2026-05-07"]  # in X's hole, still in A
    assert ids(joined, "8") == ["local.c.2026-05-07"]  # second part of a MULTIPOLYGON
    assert ids(joined, "9") == []


def test_null_location_gives_null_coordinates_and_no_ballots(edge):
    joined, files = edge
    assert joined["4"]["longitude"] is None and joined["4"]["latitude"] is None
    assert ids(joined, "4") == []
    # a location that is not a point is quarantined (tests/local/test_quarantine.py)
    assert "5" not in joined
    # every address of ZZ1 has no ballot: its file is empty (no rows, no columns)
    assert files["ZZ1"].num_columns == 0 and files["ZZ1"].num_rows == 0


def test_postcodes_are_normalised_to_upper_case_with_one_space(edge):
    joined, files = edge
    assert joined["6"]["postcode"] == "AB1 2CD" and joined["6"]["outcode"] == "AB1"
    assert joined["7"]["postcode"] == "AB1 2CE" and joined["7"]["outcode"] == "AB1"
    ab1 = files["AB1"]
    assert ab1.column("postcode").to_pylist() == [
        "AB1 1AA", "AB1 1AA", "AB1 1AB", "AB1 2CD", "AB1 2CE"
    ]  # fmt: skip
    assert ab1.column("uprn").to_pylist() == ["1", "2", "3", "6", "7"]
    assert set(files) == {"AB1", "CD1", "EF1", "ZZ1"}


def test_outcode_with_some_ballots_keeps_addresses_without_any(edge):
    _, files = edge
    cd1 = files["CD1"].to_pylist()
    assert [(r["uprn"], list(r["ballot_ids"])) for r in cd1] == [
        ("8", ["local.c.2026-05-07"]),
        ("9", []),
    ]
