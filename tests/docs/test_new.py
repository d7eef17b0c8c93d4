"""`bakery new`: a layer skeleton that validates as written and never overwrites anything."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from bakery.cli.common import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def snapshot(root):
    return {p: p.read_bytes() for p in sorted((root / "layers").rglob("*")) if p.is_file()}


def test_new_layer_validates_and_is_described(copy):
    result = run("new", "polling_districts")
    assert result.exit_code == 0, result.stderr
    layer = copy / "layers" / "polling_districts.yaml"
    query = copy / "layers" / "queries" / "polling_districts.sql"
    assert layer.read_text().splitlines()[0] == (
        "# yaml-language-server: $schema=../schemas/layer.schema.json"
    )
    assert "addressbase.addressbase_partitioned" in query.read_text()
    result = run("validate", "--all-envs")
    assert result.exit_code == 0, result.stderr
    result = run("describe", "--json")
    data = json.loads(result.stdout)
    assert data["order"][-1] == "polling_districts"
    new = next(ly for ly in data["layers"] if ly["name"] == "polling_districts")
    assert new["depends_on"] == ["addressbase"]
    assert [(s["id"], s["kind"]) for s in new["steps"]] == [
        ("empty_polling_districts", "purge_prefix"),  # implied: the skeleton writes none
        ("build_polling_districts", "athena_query"),
        ("refresh_polling_districts", "refresh_partitions"),
        ("no_missing_uprn", "check"),
    ]
    assert new["tables"][0]["location"] == (
        "s3://pollingstations.private.data/polling_districts/development/polling_districts/"
    )


def test_new_refuses_to_overwrite_a_layer_or_a_query(copy):
    before = snapshot(copy)
    result = run("new", "addressbase")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "bakery: error: layer 'addressbase' already exists; refusing to overwrite it"
    ]
    assert snapshot(copy) == before
    (copy / "layers" / "queries" / "wards.sql").write_text("-- mine\n")
    before = snapshot(copy)
    result = run("new", "wards")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "bakery: error: layers/queries/wards.sql already exists; refusing to overwrite it"
    ]
    assert snapshot(copy) == before


def test_new_checks_the_name(copy):
    before = snapshot(copy)
    for bad in ("Wards", "wards-2", "2wards", "wards__x", "_wards", "wards_"):
        result = run("new", bad)
        assert result.exit_code == 2, bad
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("bakery: error: layer name"), lines
    # A layer's table takes its name, and Glue table names are unique.
    result = run("new", "current_ballots")
    assert result.exit_code == 1
    assert "a table named 'current_ballots' already exists" in result.stderr
    assert snapshot(copy) == before


def test_new_in_a_project_without_addressbase(copy):
    for path in (copy / "layers").glob("*.yaml"):
        path.unlink()
    result = run("new", "first_layer")
    assert result.exit_code == 0, result.stderr
    assert "FROM" not in (copy / "layers" / "queries" / "first_layer.sql").read_text()
    assert run("validate").exit_code == 0
