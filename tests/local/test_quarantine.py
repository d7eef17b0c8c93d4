"""Quarantine, not fatal (issue 19, items 2 and 5), on the repository's own layers: hostile
AddressBase rows go to addressbase_rejects with their reason and are counted in the
bake's --json; the good rows are published and current_elections still checks that every
published address was joined; above the layer's limit the run fails naming the first
rejected rows, and nothing is published."""

from __future__ import annotations

import csv
import io
import json

import duckdb
import pytest
from typer.testing import CliRunner

from bakery import sample_data
from bakery.cli import app
from bakery.store import LocalStore
from tests.local.conftest import RAW, REPO, snapshot

runner = CliRunner()
REJECTS = "addressbase.addressbase_rejects"
PARTITIONED = "addressbase.addressbase_partitioned"
ADDRESSES = 300

# (uprn, postcode, location, the reason it is rejected or None)
HOSTILE = [
    ("900001", "1AB 2CD", "SRID=4326;POINT(0.1 52.2)", "postcode does not start with a letter"),
    (
        "900002",
        "/AB 2CD",
        "SRID=4326;POINT(0.1 52.2)",
        "postcode has characters other than letters and digits",
    ),
    ("900003", "", "SRID=4326;POINT(0.1 52.2)", "missing postcode"),
    ("900004", "AB1", "SRID=4326;POINT(0.1 52.2)", "postcode without an outcode"),
    ("900005", "CB1 9FN", "SRID=4326;POINT(abc def)", "unparseable location"),
    ("900006", "CB1 9FN", "SRID=4326;POINT(NaN NaN)", "unparseable location"),
    ("900007", "CB1 9FN", "SRID=4326;POINT(0.1 52.2 10)", "unparseable location"),
    ("900008", "CB1 9FN", "SRID=4326;POINT()", "unparseable location"),
    ("900009", "CB1 9FN", "SRID=4326;POINT(999 -999)", "longitude out of range"),
    ("900010", "CB1 9FN", "SRID=3857;POINT(0.1 52.2)", "unsupported SRID"),
    # valid encodings: published with coordinates
    ("900011", "CB1 9FN", "srid=4326;point(0.125 52.5)", None),
    ("900012", "CB1 9FN", "SRID=4326; POINT(0.125 52.5)", None),
    ("900013", "CB1 9FN", "POINT(0.125 52.5)", None),
    ("900014", "SW1A 1AA", "SRID=27700;POINT(530000 180000)", None),
    ("900015", "CB1 9FN", "", None),  # no location: NULL coordinates, as before
]
REJECTED = [h for h in HOSTILE if h[3]]


def _csv(rows: list[tuple]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


def seed(plan, store: LocalStore, extra: list[tuple]) -> None:
    sample_data.write_sample_data(plan, store, addresses=ADDRESSES, ballots=20, seed=3)
    rows = [(u, f"{u} Hostile Road", pc, loc, "R") for u, pc, loc, *_ in extra]
    store.write_bytes(plan.table(RAW).location + "hostile.csv", _csv(rows))


def bake(store: LocalStore, *layers: str):
    return runner.invoke(
        app, ["bake", *layers, "--with-upstream", "--store", str(store.root), "--json"]
    )


def rows(store: LocalStore, plan, ref: str, columns: str) -> list[tuple]:
    folder = store.path(plan.table(ref).location)
    return duckdb.sql(
        f"SELECT {columns} FROM read_parquet('{folder}/**/*.parquet', hive_partitioning=true) "
        "ORDER BY ALL"
    ).fetchall()


@pytest.fixture(autouse=True)
def _repo(monkeypatch):
    monkeypatch.setenv("BAKERY_PROJECT", str(REPO))
    monkeypatch.delenv("BAKERY_EE_DSN", raising=False)


def test_hostile_rows_are_quarantined_and_the_night_goes_on(repo_plan, store):
    seed(repo_plan, store, HOSTILE)
    result = bake(store, "current_elections")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    # counted in --json, per step and per reason
    assert summary["rejected"] == {
        "addressbase.partition_addressbase": {
            "table": REJECTS,
            "rows": len(REJECTED),
            "reasons": {
                "unparseable location": 4,
                "longitude out of range": 1,
                "missing postcode": 1,
                "postcode does not start with a letter": 1,
                "postcode has characters other than letters and digits": 1,
                "postcode without an outcode": 1,
                "unsupported SRID": 1,
            },
        }
    }
    steps = {s["id"]: s for s in summary["steps"]}
    good = ADDRESSES + len(HOSTILE) - len(REJECTED)
    assert steps["partition_addressbase"]["rejected"] == len(REJECTED)
    assert steps["partition_addressbase"]["rows"] == good
    assert steps["partition_addressbase_quarantine"]["ok"]
    # every published address joined: current_elections compares with the accepted rows
    assert summary["tables"][PARTITIONED]["rows"] == good
    joined = "current_elections.current_ballots_joined_to_address_base"
    assert summary["tables"][joined]["rows"] == good
    assert summary["tables"][REJECTS]["rows"] == len(REJECTED)
    # on the progress line too
    assert f"{good:,} rows  {len(REJECTED)} rejected  rejects into {REJECTS}" in result.stderr
    # the rejects table: the key, the reason, the raw values, the release
    source = repo_plan.table(RAW).location
    assert rows(store, repo_plan, REJECTS, "*") == sorted(
        (u, why, pc, loc, source) for u, pc, loc, why in REJECTED
    )
    # the good rows: every first letter A-Z (the fan-out covers them all), encodings parsed
    letters = {r[0] for r in rows(store, repo_plan, PARTITIONED, "first_letter")}
    assert letters <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    published = {
        r[0]: r[1:]
        for r in rows(store, repo_plan, PARTITIONED, "uprn, postcode, longitude, latitude")
    }
    assert not {u for u, *_ in REJECTED} & set(published)
    for uprn in ("900011", "900012", "900013"):
        assert published[uprn] == ("CB1 9FN", 0.125, 52.5)
    postcode, lon, lat = published["900014"]
    assert postcode == "SW1A 1AA"
    assert lon == pytest.approx(-0.1283539, abs=1e-6) and lat == pytest.approx(51.5039908, abs=1e-6)
    assert published["900015"] == ("CB1 9FN", None, None)


def test_above_the_limit_the_run_fails_naming_the_first_rejected_rows(repo_plan, store):
    seed(repo_plan, store, [])
    assert bake(store, "addressbase").exit_code == 0
    # 1,001 postcodes that do not start with a letter: the layer allows 1,000
    many = [(str(800000 + i), f"{i % 10}AB 1CD", "", "x") for i in range(1001)]
    seed(repo_plan, store, many)
    before = snapshot(store.root)
    result = bake(store, "addressbase")
    assert result.exit_code == 1
    error = result.stderr.strip().splitlines()[-1]
    first = "; ".join(
        f"uprn={800000 + i} (postcode does not start with a letter)" for i in range(5)
    )
    assert error == (
        "bakery: error: check addressbase.partition_addressbase_quarantine failed: quarantine: "
        f"1001 of {ADDRESSES + 1001} rows rejected (76.94 %), over the limit of 1000 rows; "
        f"the first by uprn: {first}; nothing was published"
    )
    assert "Traceback" not in result.stderr
    summary = json.loads(result.stdout)
    assert summary["ok"] is False
    assert summary["rejected"]["addressbase.partition_addressbase"]["rows"] == 1001
    assert snapshot(store.root) == before  # the published tables are untouched


def test_a_percentage_limit_allows_up_to_its_share(tmp_path, store):
    """The framework on a fixture layer (tests/fixtures/quarantine): 2 of 20 rows is 10 %,
    not more than the 10 % allowed, so the run passes and publishes both tables."""
    import shutil

    from bakery.engine import bake as bake_plan
    from bakery.plan import build_plan
    from bakery.workspace import load_workspace

    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO / "bakery.yaml", root / "bakery.yaml")
    shutil.copytree(REPO / "layers", root / "layers")
    shutil.copy(REPO / "tests/fixtures/quarantine/sim_quarantine.yaml", root / "layers")
    plan = build_plan(load_workspace(root), "development")
    lines = [f"r{n:02d},{n}" for n in range(18)] + ["x0,n/a", "x1,"]
    readings = plan.table("sim_quarantine.sim_readings").location
    store.write_bytes(readings + "r.csv", ("id,reading\n" + "\n".join(lines) + "\n").encode())
    result = bake_plan(plan, ["sim_quarantine"], store)
    assert result.rejected["sim_quarantine.parse_readings"] == {
        "table": "sim_quarantine.sim_rejects",
        "rows": 2,
        "reasons": {"not a number": 2},
    }
    assert rows(store, plan, "sim_quarantine.sim_rejects", "*") == [
        ("x0", "not a number", "n/a"),
        ("x1", "not a number", ""),  # an empty CSV field is text, as on Athena
    ]
    numbers = rows(store, plan, "sim_quarantine.sim_numbers", "*")
    assert len(numbers) == 18 and numbers[0] == ("r00", 0.0)
