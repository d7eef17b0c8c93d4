"""`bakery render` prints the exact SQL each step runs (issue 9 item 5), and `describe
--json` carries it; on the fixture projects tests/fixtures/wards and tests/fixtures/project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bakery.cli import app
from bakery.engine.transpile import to_duckdb
from bakery.plan import build_plan
from bakery.workspace import load_workspace

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def wards(monkeypatch):
    monkeypatch.setenv("BAKERY_PROJECT", str(FIXTURES / "wards"))
    return build_plan(load_workspace(FIXTURES / "wards"), "development")


@pytest.fixture
def two_layers(monkeypatch):
    monkeypatch.setenv("BAKERY_PROJECT", str(FIXTURES / "project"))
    return build_plan(load_workspace(FIXTURES / "project"), "development")


def test_athena_text_is_the_unload_the_state_machine_sends(wards):
    result = run("render", "wards", "join_wards")
    assert result.exit_code == 0, result.stderr
    step = next(s for s in wards.layer("wards").steps if s.id == "join_wards")
    lines = result.stdout.splitlines()
    assert lines[0] == "-- wards.join_wards (athena_query)"
    assert lines[1] == "UNLOAD ("
    body = "\n".join(lines[2:])
    assert body.startswith(step.sql)  # the rendered SELECT, untouched
    # written to staging first (published after the checks), in the table's format
    assert body.endswith(
        "\n)\nTO 's3://wards-demo-data/bakery-staging/wards/development/homes_in_wards/'\n"
        "WITH (format = 'PARQUET', compression = 'SNAPPY');"
    )


def test_duckdb_text_is_the_transpiled_query(wards):
    result = run("render", "wards", "join_wards", "--engine", "duckdb")
    assert result.exit_code == 0, result.stderr
    step = next(s for s in wards.layer("wards").steps if s.id == "join_wards")
    assert result.stdout.splitlines()[-1] == to_duckdb(step.sql) + ";"
    assert "ST_GEOMETRYFROMTEXT" in result.stdout.upper()


def test_a_fanned_out_step_prints_one_statement_per_value_with_its_parameter(two_layers):
    result = run("render", "current_elections", "join_ballots_to_addresses", "--json")
    assert result.exit_code == 0, result.stderr
    statements = json.loads(result.stdout)
    assert [s["params"] for s in statements] == [[f"'{c}'"] for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"]
    assert all("WHERE first_letter = ?" in " ".join(s["sql"].split()) for s in statements)
    assert (
        statements[0]["sql"]
        .split("\nTO ")[1]
        .startswith(
            "'s3://pollingstations.private.data/bakery-staging/addressbase/development/"
            "current_ballots_joined_to_address_base/first_letter=A/'"
        )
    )
    local = json.loads(
        run("render", "current_elections", "join_ballots_to_addresses", "--engine", "duckdb",
            "--json").stdout
    )  # fmt: skip
    assert len(local) == 1 and local[0]["params"] == list("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def test_every_step_is_listed_and_steps_without_sql_say_why(two_layers):
    result = run("render", "addressbase")
    assert result.exit_code == 0
    heads = [ln for ln in result.stdout.splitlines() if ln.startswith("-- addressbase.")]
    assert [h.split(" ")[1] for h in heads] == [
        "addressbase.empty_partitioned",
        "addressbase.partition_addressbase",
        "addressbase.refresh_addressbase_partitioned",
        "addressbase.one_addressbase_source",
        "addressbase.same_uprns_as_raw",
    ]
    assert "-- no SQL: a Lambda deletes the objects under the location" in result.stdout
    assert "MSCK REPAIR TABLE dc_data_baker.addressbase_partitioned__staging;" in result.stdout


def test_describe_json_includes_the_sql(wards):
    result = run("describe", "wards", "--json")
    assert result.exit_code == 0
    steps = {s["id"]: s for s in json.loads(result.stdout)["layers"][0]["steps"]}
    join = steps["join_wards"]["sql"]
    assert join["athena"][0]["sql"].startswith("UNLOAD (")
    assert join["duckdb"][0]["sql"] == to_duckdb(
        next(s for s in wards.layer("wards").steps if s.id == "join_wards").sql
    )
    assert steps["empty_homes_in_wards"]["sql"] == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("render", "ward"), "bakery: error: unknown layer 'ward'; did you mean 'wards'?"),
        (
            ("render", "wards", "join_ward"),
            "bakery: error: layer 'wards' has no step 'join_ward'; did you mean 'join_wards'?",
        ),
        (
            ("render", "wards", "--engine", "trino"),
            "bakery: error: --engine 'trino': use athena or duckdb",
        ),
    ],
)
def test_usage_errors(wards, args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert result.stderr.strip() == message
