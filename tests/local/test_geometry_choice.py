"""valid_geometry's choice on an invalid piece (issue 13, finding 6): `fail` (the
default) fails the bake before publishing with the count; `repair` (ST_MakeValid) is a
validate error naming the line, since Athena engine 3 has no function that repairs a
geometry (bakery/data/athena_functions.txt) and a layer must bake the same on both."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bakery.cli import app
from bakery.engine.runner import BakeError, bake
from bakery.function_catalog import athena_functions
from bakery.kinds.check import REPAIR_REFUSED
from bakery.plan import build_plan
from bakery.store import LocalStore
from bakery.workspace import load_workspace
from tests.local.test_guards import BOWTIE, GOOD_POINTS, SQUARE, write

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "guards"
DEFAULT = "check: {kind: valid_geometry, table: areas, column: geometry, label: area_id}"
runner = CliRunner()


def _project(tmp_path: Path, on_invalid: str) -> Path:
    root = tmp_path / "project"
    shutil.copytree(FIXTURE, root)
    layer = root / "layers" / "places.yaml"
    text = layer.read_text()
    assert DEFAULT in text
    layer.write_text(text.replace(DEFAULT, DEFAULT[:-1] + f", on_invalid: {on_invalid}}}"))
    return root


def test_athena_has_no_function_that_repairs_a_geometry():
    names = {n.lower() for n in athena_functions()}
    assert {"st_isvalid", "geometry_invalid_reason"} <= names  # the list is the geo one
    assert not {"st_makevalid", "make_valid", "st_make_valid"} & names


def test_on_invalid_fail_fails_before_publishing_with_the_count(tmp_path):
    plan = build_plan(load_workspace(_project(tmp_path, "fail")), "development")
    store = LocalStore(tmp_path / "store")
    write(plan, store, GOOD_POINTS, [("sq", SQUARE), ("bad-1", BOWTIE), ("bad-2", BOWTIE)])
    with pytest.raises(BakeError) as info:
        bake(plan, ["places"], store)
    assert str(info.value) == (
        "check places.areas_valid failed: every areas.geometry is a valid polygon or multipolygon "
        "(ST_IsValid): invalid_pieces=2, first_invalid_area_id=bad-1"
    )
    assert not store.list("s3://guards-data/development/")


def test_on_invalid_repair_is_a_validate_error_at_its_line(tmp_path, monkeypatch):
    root = _project(tmp_path, "repair")
    monkeypatch.setenv("BAKERY_PROJECT", str(root))
    line = next(
        i
        for i, text in enumerate((root / "layers/places.yaml").read_text().splitlines(), 1)
        if "on_invalid: repair" in text
    )
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    problem = result.stderr.splitlines()[0]
    assert problem.startswith(f"layers/places.yaml:{line}:"), problem
    assert "on_invalid" in problem and REPAIR_REFUSED in problem, problem
