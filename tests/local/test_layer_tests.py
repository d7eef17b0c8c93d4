"""Layer tests in YAML (issue 9 item 3), on the fixture project tests/fixtures/wards:
`bakery test` runs them on DuckDB with a readable diff, and pytest collects them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bakery.cli import app

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "wards"
runner = CliRunner()

CASES = """\
layer: wards
tests:
  - name: two_homes
    given:
      homes:
        - {uprn: "1", postcode: ab12cd, longitude: 0.5, latitude: 1.5}
        - {uprn: "2", postcode: EF3 4GH}
      ward_polygons: {file: ../samples/ward_polygons.csv}
    expect:
      homes_in_wards:
EXPECT
"""


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "project"
    shutil.copytree(FIXTURE, root)
    monkeypatch.setenv("BAKERY_PROJECT", str(root))
    return root


def write_case(root: Path, expect: str) -> None:
    (root / "layers/tests/wards.yaml").write_text(CASES.replace("EXPECT", expect))


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_the_fixture_tests_pass(project):
    result = run("test")
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("ok   wards::home_on_a_ward_edge_is_not_in_that_ward (")
    assert lines[-1].startswith("2 passed, 0 failed in ")


def test_a_failing_test_prints_expected_and_actual_rows(project):
    write_case(
        project,
        '        - {uprn: "1", postcode: AB1 2CD, ward_ids: [north]}\n'
        '        - {uprn: "2", postcode: EF3 4GH, ward_ids: [south]}',
    )
    result = run("test", "wards")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[:5] == [
        "FAIL wards::two_homes (layers/tests/wards.yaml:3)",
        "  wards.homes_in_wards: 1 expected row(s) not found (-), 1 row(s) not expected (+); "
        "2 row(s) in all",
        "      uprn | postcode | ward_ids",
        "    - 2    | EF3 4GH  | [south]",
        "    + 2    | EF3 4GH  | []",
    ]
    assert result.stderr.splitlines()[-1].startswith("0 passed, 1 failed in ")


def test_rows_compare_in_any_order_unless_ordered_by(project):
    unordered = '        - {uprn: "2", wards: 0}\n        - {uprn: "1", wards: 1}'
    write_case(project, unordered)
    assert run("test").exit_code == 0
    write_case(project, "        rows:\n" + unordered.replace("        -", "          -")
               + "\n        ordered_by: [uprn]")  # fmt: skip
    result = run("test")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[1:7] == [
        "  wards.homes_in_wards: rows differ in order or content (- expected, + actual)",
        "      uprn | wards",
        "    - 2    | 0",
        "    - 1    | 1",
        "    + 1    | 1",
        "    + 2    | 0",
    ]


def test_json_reports_every_test(project):
    write_case(project, '        - {uprn: "1", wards: 2}')
    result = run("test", "--json")
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert out["ok"] is False
    (only,) = out["tests"]
    assert only["id"] == "wards::two_homes" and only["ok"] is False
    assert only["file"] == "layers/tests/wards.yaml:3"
    assert "    - 1    | 2" in only["diff"]


@pytest.mark.parametrize(
    ("expect", "problem"),
    [
        (
            '        - {uprn: "1", ward: x}',
            "layers/tests/wards.yaml:11:11: tests[0].expect.homes_in_wards[0]: table "
            "'wards.homes_in_wards' has no column 'ward' "
            "(columns: uprn, postcode, outcode, ward_ids, wards)",
        ),
    ],
)
def test_problems_in_a_test_file_name_its_line(project, expect, problem):
    write_case(project, expect)
    result = run("test")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [problem, "1 problem found"]


def test_given_and_expected_tables_must_belong_to_the_layer(project):
    text = CASES.replace("EXPECT", '        - {uprn: "1"}')
    text = text.replace("      homes:\n", "      homes_in_wards:\n", 1)
    text = text.replace("    expect:\n      homes_in_wards:", "    expect:\n      homes:")
    (project / "layers/tests/wards.yaml").write_text(text)
    result = run("test")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "layers/tests/wards.yaml:5:7: tests[0].given.homes_in_wards: 'homes_in_wards' is not "
        "a table the layer reads (wards.homes, wards.ward_polygons)",
        "layers/tests/wards.yaml:10:7: tests[0].expect.homes: 'homes' is not a table a query "
        "step of the layer writes (wards.homes_in_wards)",
        "2 problems found",
    ]


def test_an_unknown_layer_is_a_usage_error(project):
    result = run("test", "ward")
    assert result.exit_code == 2
    assert result.stderr.strip() == "bakery: error: unknown layer 'ward'; did you mean 'wards'?"


def test_pytest_collects_layer_tests_and_shows_the_diff(project):
    write_case(project, '        - {uprn: "1", wards: 5}')
    env = {k: v for k, v in os.environ.items() if k != "BAKERY_PROJECT"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "bakery.pytest_plugin", "-p", "no:cacheprovider",
         "-q", str(project / "layers" / "tests")],
        capture_output=True, text=True, cwd=project, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "layer test wards::two_homes failed:" in done.stdout
    assert "    - 1    | 5" in done.stdout
    assert "1 failed" in done.stdout


def test_validate_checks_the_layer_test_files(project):
    write_case(project, '        - {uprn: "1", ward: x}')
    result = run("validate")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0].startswith(
        "layers/tests/wards.yaml:11:11: tests[0].expect.homes_in_wards[0]: table "
        "'wards.homes_in_wards' has no column 'ward'"
    )
    write_case(project, '        - {uprn: "1", wards: 1}')
    ok = run("validate")
    assert ok.exit_code == 0 and ok.stderr.startswith("ok: 1 layer, 3 tables, 1 layer test (")
