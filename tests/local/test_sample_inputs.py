"""Sample inputs for any layer (issue 9 item 2), on the fixture project tests/fixtures/wards:
a table's `sample` is a file next to the layer or a registered generator; `sample-data`
and `bake --sample` seed every declared input; a missing one says what to add."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from bakery import sample_data
from bakery.cli import app
from bakery.sample_data import SampleFiles, SampleRequest

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "wards"
runner = CliRunner()
HOMES = "wards-demo-data/homes/2026-01-01"
POLYGONS = "wards-demo-data/wards/2026-01-01/polygons"
JOINED = "wards-demo-data/wards/development/homes_in_wards"


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "project"
    shutil.copytree(FIXTURE, root)
    monkeypatch.setenv("BAKERY_PROJECT", str(root))
    monkeypatch.setenv("BAKERY_STORE", str(tmp_path / "store"))
    return root


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def files(store: Path, folder: str) -> list[Path]:
    return sorted((store / folder).glob("*"))


def edit(root: Path, old: str, new: str) -> None:
    path = root / "layers" / "wards.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_sample_data_writes_each_file_sample_in_its_tables_format(project, tmp_path):
    result = run("sample-data")
    assert result.exit_code == 0, result.stderr
    assert "wrote 5 rows from layers/samples/homes.csv for wards.homes" in result.stderr
    assert "seeded 2 input tables" in result.stderr
    store = tmp_path / "store"
    (homes,) = files(store, HOMES)
    # the table is a headerless CSV; NULL is \N, as the engine (and Athena) read it
    assert homes.read_text().splitlines() == [
        "1,AB1 2CD,0.5,1.5",
        "2,ab12cd,0.5,0.5",
        "3,AB1 2CE,1.5,1.5",
        "4,EF3 4GH,5.0,5.0",
        "5,EF3 4GJ,\\N,\\N",
    ]
    (polygons,) = files(store, POLYGONS)
    assert polygons.read_text().splitlines()[0] == "ward_id,geometry"
    # seeding again replaces, never adds
    assert run("sample-data", "wards").exit_code == 0
    assert len(files(store, HOMES)) == 1


def test_bake_sample_seeds_missing_inputs_then_bakes(project, tmp_path):
    result = run("bake", "wards", "--sample")
    assert result.exit_code == 0, result.stderr
    assert "seeded sample data for wards.homes, wards.ward_polygons" in result.stderr
    rows = duckdb.sql(
        f"SELECT uprn, postcode, ward_ids FROM read_parquet('{tmp_path}/store/{JOINED}/*') "
        "ORDER BY uprn"
    ).fetchall()
    assert rows == [
        ("1", "AB1 2CD", ["north"]),
        ("2", "AB1 2CD", ["south"]),
        ("3", "AB1 2CE", ["east", "north"]),
        ("4", "EF3 4GH", []),
        ("5", "EF3 4GJ", []),
    ]
    again = run("bake", "wards", "--sample")
    assert again.exit_code == 0 and "seeded" not in again.stderr


def test_an_input_without_a_sample_says_what_to_add_to_the_yaml(project):
    edit(project, "    sample: {file: samples/homes.csv}\n", "")
    line = next(
        i + 1
        for i, text in enumerate((project / "layers/wards.yaml").read_text().splitlines())
        if text.strip() == "name: homes"
    )
    want = (
        f"layers/wards.yaml:{line - 1}:5: table wards.homes declares no sample; add to its "
        "glue_table step `sample: {file: samples/homes.csv}` (a CSV with header "
        "uprn,postcode,longitude,latitude, next to the layer file) or "
        f"`sample: {{generator: NAME}}` (registered: {', '.join(sample_data.GENERATORS)})"
    )
    plain = run("bake", "wards")
    assert plain.exit_code == 1
    assert plain.stderr.strip().splitlines()[-1].endswith("declare sample rows for it: " + want)
    seeded = run("bake", "wards", "--sample")
    assert seeded.exit_code == 1
    assert seeded.stderr.strip().splitlines()[-1] == "bakery: error: " + want
    assert run("sample-data").stderr.strip() == "bakery: error: " + want


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "{file: samples/homes.csv}",
            "{generator: adressbase}",
            "steps[1].sample.generator: no sample generator 'adressbase'; "
            "did you mean 'addressbase'?",
        ),
        (
            "{file: samples/homes.csv}",
            "{generator: shops}",
            "steps[1].sample.generator: no sample generator 'shops'; "
            "registered: addressbase, ballots",
        ),
        (
            "{file: samples/homes.csv}",
            "{file: samples/homes.csv, generator: addressbase}",
            "steps[1].sample: give exactly one of 'file' or 'generator'",
        ),
        (
            "{file: samples/homes.csv}",
            "{file: samples/nothere.csv}",
            "steps[1].sample.file: sample 'samples/nothere.csv' not found",
        ),
        (
            "{file: samples/homes.csv}",
            "{file: ../../../outside.csv}",
            "steps[1].sample.file: sample '../../../outside.csv' is outside the project",
        ),
        (
            "{file: samples/homes.csv}",
            "{file: samples/homes.csv, rows: 3}",
            "steps[1].sample.rows: 'rows' sizes a generator, not a file",
        ),
        (
            "{name: latitude, type: double}",
            "{name: lat, type: double}",
            "steps[1].sample.file: sample 'samples/homes.csv' must start with the header line "
            "uprn,postcode,longitude,lat (found 'uprn,postcode,longitude,latitude')",
        ),
    ],
)
def test_validate_checks_samples(project, old, new, message):
    edit(project, old, new)
    result = run("validate")
    assert result.exit_code == 1
    lines = [ln for ln in result.stderr.splitlines() if "sample" in ln]
    assert len(lines) == 1 and re.match(r"layers/wards\.yaml:\d+:\d+: ", lines[0]), lines
    assert message in lines[0]


def fixed_homes(request: SampleRequest) -> SampleFiles:
    """A generator as a user writes one: rows in the table's format (headerless CSV)."""
    n = request.rows or 4
    body = "".join(f"{i},ZZ{i} 9ZZ,{i}.5,0.5\n" for i in range(n))
    return SampleFiles({"homes.csv": body.encode()}, n, f"{n} homes")


def test_registering_a_generator_is_one_line(project, tmp_path, monkeypatch):
    monkeypatch.setitem(
        sample_data.GENERATORS, "fixed_homes", "tests.local.test_sample_inputs:fixed_homes"
    )
    edit(project, "{file: samples/homes.csv}", "{generator: fixed_homes, rows: 3}")
    assert run("validate").exit_code == 0
    result = run("sample-data")
    assert result.exit_code == 0, result.stderr
    assert "wrote 3 homes for wards.homes (generator fixed_homes)" in result.stderr
    assert run("sample-data", "--rows", "fixed_homes=2").exit_code == 0
    (homes,) = files(tmp_path / "store", HOMES)
    assert homes.read_text() == "0,ZZ0 9ZZ,0.5,0.5\n1,ZZ1 9ZZ,1.5,0.5\n"
    assert run("sample-data", "--rows", "wards.homes=1").exit_code == 0
    assert homes.read_text() == "0,ZZ0 9ZZ,0.5,0.5\n"


@pytest.mark.parametrize("bad", ["x", "x=0", "=3", "x=three"])
def test_rows_must_be_name_equals_n(project, bad):
    result = run("sample-data", "--rows", bad)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"bakery: error: --rows {bad!r}: give NAME=N (a generator or table, N >= 1)"
    )


def test_sample_data_refuses_an_unknown_layer(project):
    result = run("sample-data", "ward")
    assert result.exit_code == 2
    assert result.stderr.strip() == "bakery: error: unknown layer 'ward'; did you mean 'wards'?"


def test_every_registered_generator_loads_and_makes_files():
    # what the registry promises: each "module:function" imports and returns files
    for name in sample_data.GENERATORS:
        made = sample_data.generator(name)(
            SampleRequest(None, None, 4, 1, {"addressbase": 500})  # type: ignore[arg-type]
            if name != "ballots"
            else _ballots_request()
        )
        assert made.files and made.rows > 0 and made.summary, name


def _ballots_request() -> SampleRequest:
    from bakery.plan import build_plan
    from bakery.workspace import load_workspace

    root = Path(__file__).resolve().parents[1] / "fixtures" / "project"
    plan = build_plan(load_workspace(root), "development")
    return SampleRequest(plan, plan.table("current_elections.current_ballots"), 4, 1)
