"""bake, sample-data and lookup as a user runs them; and a bake against an S3 API (moto)."""

from __future__ import annotations

import io
import json
import socket

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from bakery import sample_data
from bakery.cli import app
from bakery.democracy_club.postcodes import normalise_postcode
from bakery.democracy_club.samples.addressbase import addresses_table
from bakery.democracy_club.samples.ballots import ballots_rows
from bakery.engine import bake
from bakery.store import LocalStore, S3Store
from tests.local.conftest import BALLOTS, RAW, export_location, read_outcodes, write_inputs

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_readme_first_command_on_a_fresh_store(tmp_path, monkeypatch):
    monkeypatch.setenv("BAKERY_STORE", str(tmp_path / "store"))
    result = run("bake", "current_elections", "--with-upstream", "--sample", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["ok"] and summary["layers"] == ["addressbase", "current_elections"]
    tables = summary["tables"]
    joined = tables["current_elections.current_ballots_joined_to_address_base"]
    assert joined["rows"] == tables["addressbase.addressbase_partitioned"]["rows"] == 50_000
    steps = {(s["layer"], s["id"]): s for s in summary["steps"]}
    assert steps[("current_elections", "export_outcodes")]["files"] > 100
    assert all(s["seconds"] >= 0 for s in summary["steps"])
    assert "seeded sample data" in result.stderr
    assert "using the ballots CSV already in the store" in result.stderr
    # the README's lookup finds ballots at its postcode
    looked = run("lookup", "CB1 9FN", "--json")
    assert looked.exit_code == 0, looked.stderr
    found = json.loads(looked.stdout)
    assert found["postcode"] == "CB1 9FN" and found["addresses"]
    assert any(a["ballot_ids"] for a in found["addresses"])
    # a second bake finds the inputs and does not reseed
    again = run("bake", "current_elections", "--sample")
    assert again.exit_code == 0 and "seeded sample data" not in again.stderr


def test_unknown_layer_is_a_usage_error(tmp_path):
    result = run("bake", "current_elction", "--store", str(tmp_path))
    assert result.exit_code == 2
    assert "unknown layer 'current_elction'; did you mean 'current_elections'?" in result.stderr


def test_no_ballots_and_no_dsn_fails_saying_what_to_configure(tmp_path, plan, monkeypatch):
    monkeypatch.delenv("BAKERY_EE_DSN", raising=False)
    store = LocalStore(tmp_path)
    table = addresses_table(100)
    import pyarrow.csv as pacsv

    buf = io.BytesIO()
    pacsv.write_csv(table, buf, write_options=pacsv.WriteOptions(include_header=False))
    store.write_bytes(plan.table(RAW).location + "a.csv", buf.getvalue())
    result = run("bake", "current_elections", "--with-upstream", "--store", str(tmp_path))
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("bakery: error: step current_elections.export_ballots: no ballots CSV")
    assert "BAKERY_EE_DSN" in last and "Traceback" not in result.stderr


def test_lookup(tmp_path, plan):
    store = LocalStore(tmp_path)
    write_inputs(
        plan,
        store,
        [
            ("1", "1 High Street", "AB1 1AA", "SRID=4326;POINT(0.5 51.5)", "R"),
            ("2", "2 High Street", "ab11aa", "SRID=4326;POINT(1.5 51.5)", "R"),
            ("3", "3 Low Street", "AB1 1AB", "SRID=4326;POINT(0.5 51.5)", "R"),
            ("4", "4 Far Away", "ZZ1 1AA", "SRID=4326;POINT(9 51)", "R"),
        ],
        [("local.a.2026-05-07", "d", "POLYGON((0 51, 1 51, 1 52, 0 52, 0 51))", "Division")],
    )
    bake(plan, ["current_elections"], store, with_upstream=True)
    result = run("lookup", " ab1  1aa", "--store", str(tmp_path), "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["postcode"] == "AB1 1AA" and data["status"] == "ok"
    assert data["addresses"] == [
        {"uprn": "1", "address": "1 High Street", "ballot_ids": ["local.a.2026-05-07"]},
        {"uprn": "2", "address": "2 High Street", "ballot_ids": []},
    ]
    text = run("lookup", "AB11AA", "--store", str(tmp_path))
    assert "AB1 1AA: 2 addresses" in text.stdout and "local.a.2026-05-07" in text.stdout
    empty = run("lookup", "zz1 1aa", "--store", str(tmp_path))
    assert "no elections" in empty.stdout
    missing = run("lookup", "QQ9 9QQ", "--store", str(tmp_path))
    assert "unknown outcode QQ9" in missing.stdout


def test_normalise_postcode():
    assert normalise_postcode("sw1a1aa") == "SW1A 1AA"
    assert normalise_postcode("  SW1A   1AA ") == "SW1A 1AA"
    assert normalise_postcode("m11ae") == "M1 1AE"


def test_sample_data_is_deterministic_and_shaped(tmp_path, plan):
    a, b, c = (LocalStore(tmp_path / n) for n in "abc")
    files = sample_data.write_sample_data(plan, a, addresses=20_000, ballots=200, seed=5).files
    sample_data.write_sample_data(plan, b, addresses=20_000, ballots=200, seed=5)
    sample_data.write_sample_data(plan, c, addresses=20_000, ballots=200, seed=6)
    assert len(files) == 2
    for uri in files:
        assert a.read_bytes(uri) == b.read_bytes(uri) != c.read_bytes(uri)
    table = addresses_table(20_000, 5).to_pylist()
    postcodes = [r["postcode"] for r in table]
    assert any(p != p.upper() for p in postcodes)  # some lower case
    assert any(" " not in p for p in postcodes)  # some without the space
    assert sum(r["location"] is None for r in table) > 50  # some empty locations
    ballots = ballots_rows(200, 5)
    assert {r[3] for r in ballots} == {"Organisation", "Division", "None"}
    assert any(r[2].startswith("MULTIPOLYGON") for r in ballots)
    assert any("), (" in r[2] and r[2].startswith("POLYGON") for r in ballots)  # holes
    assert all(r[2] == "" for r in ballots if r[3] == "None")
    assert len(ballots) > 3 * len({r[0] for r in ballots})  # subdivided
    result = run(
        "sample-data", "--addresses", "1000", "--ballots", "30", "--store", str(tmp_path / "d")
    )
    assert result.exit_code == 0 and "wrote 1,000 addresses" in result.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def moto_endpoint(monkeypatch):
    from moto.server import ThreadedMotoServer

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-2",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def test_bake_against_an_s3_endpoint_matches_a_local_bake(plan, tmp_path, moto_endpoint):
    s3 = S3Store(moto_endpoint)
    for bucket in plan.project.buckets.values():
        s3.client.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"}
        )
    local = LocalStore(tmp_path / "local")
    for store in (s3, local):
        sample_data.write_sample_data(plan, store, addresses=2000, ballots=60, seed=11)
    stale = export_location(plan) + "ZZ99.parquet"
    s3.write_bytes(stale, b"stale")
    result = bake(plan, ["current_elections"], s3, with_upstream=True, s3_endpoint=moto_endpoint)
    assert result.ok
    bake(plan, ["current_elections"], local, with_upstream=True)

    want = read_outcodes(local, plan)
    keys = [u for u in s3.list(export_location(plan))]
    assert stale not in keys
    assert sorted(k.rsplit("/", 1)[1][:-8] for k in keys) == sorted(want)
    for uri in keys:
        got = pq.read_table(io.BytesIO(s3.read_bytes(uri)))
        assert got.equals(want[uri.rsplit("/", 1)[1][:-8]])
    # nothing staged is left in the bucket
    bucket = plan.table(BALLOTS).bucket
    leftovers = s3.client.list_objects_v2(Bucket=bucket, Prefix=".bakery-staging/")
    assert leftovers.get("KeyCount", 0) == 0
    joined = plan.table("current_elections.current_ballots_joined_to_address_base")
    assert any("first_letter=" in u for u in s3.list(joined.location))


def test_missing_external_input_fails_before_any_step(tmp_path):
    result = run("bake", "addressbase", "--store", str(tmp_path))
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "bakery: error: layer addressbase: input table addressbase.addressbase_cleaned_raw "
        "has no files at s3://pollingstations.private.data/addressbase/2026-02-02/"
    ), last
    assert "--sample" in last
