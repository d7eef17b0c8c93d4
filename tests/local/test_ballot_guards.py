"""Ballot rows the geo-join must never see (issue 19, item 3): a blank election_id would
become a '' ballot for every address in its polygon, and a POINT or LINESTRING (valid
geometries) would give its ballot to the addresses lying on it. The repository's
current_elections refuses both before anything is published, naming the row."""

from __future__ import annotations

import pytest

from bakery.engine import BakeError, bake
from tests.local.conftest import write_inputs

SQUARE = "POLYGON((0 51, 1 51, 1 52, 0 52, 0 51))"
ADDRESSES = [
    ("1", "1 Inside", "AB1 1AA", "SRID=4326;POINT(0.5 51.5)", "R"),
    ("2", "2 On the line", "AB1 1AB", "SRID=4326;POINT(0.25 51.25)", "R"),
]
GOOD = ("local.a.2026-05-07", "div:a", SQUARE, "Division")


def fails(plan, store, ballots: list[tuple]) -> str:
    write_inputs(plan, store, ADDRESSES, ballots)
    with pytest.raises(BakeError) as err:
        bake(plan, ["current_elections"], store, with_upstream=True)
    published = store.list("s3://pollingstations.private.data/")
    assert published  # addressbase, upstream, was published
    assert not [f for f in published if "/current_" in f]  # nothing of current_elections
    return str(err.value)


@pytest.mark.parametrize("blank", ["", "   "])
def test_a_blank_election_id_fails_naming_the_row(repo_plan, store, blank):
    message = fails(repo_plan, store, [GOOD, (blank, "div:blank", SQUARE, "Division")])
    assert message == (
        "check current_elections.ballots_named failed: Every ballot row has an election_id; "
        "a blank one would become a '' ballot for every address inside its polygon: "
        "blank_rows=1, first_blank_row_division_id=div:blank"
    )


@pytest.mark.parametrize(
    "wkt", ["POINT(0.25 51.25)", "LINESTRING(0 51, 0.25 51.25, 0.5 51.5)", "MULTIPOINT((0 51))"]
)
def test_a_non_areal_ballot_fails_naming_the_election(repo_plan, store, wkt):
    message = fails(repo_plan, store, [GOOD, ("local.line.2026-05-07", "div:l", wkt, "Division")])
    assert message == (
        "check current_elections.ballots_valid_geometry failed: every current_ballots.geometry "
        "is a valid polygon or multipolygon (ST_IsValid): invalid_pieces=1, "
        "first_invalid_election_id=local.line.2026-05-07"
    )


def test_polygons_and_multipolygons_pass(repo_plan, store):
    multi = "MULTIPOLYGON(((0 51, 1 51, 1 52, 0 52, 0 51)))"
    ballots = [GOOD, ("local.m.2026-05-07", "div:m", multi, "Division")]
    write_inputs(repo_plan, store, ADDRESSES, ballots)
    assert bake(repo_plan, ["current_elections"], store, with_upstream=True).ok
