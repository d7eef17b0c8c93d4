"""validate catches what Athena (or the local engine) would reject, at the .sql line
(issue 9 item 4), on the fixture project tests/fixtures/wards."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bakery import function_catalog
from bakery.engine import function_lists
from bakery.errors import SpecError
from bakery.plan import build_plan
from bakery.workspace import load_workspace

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "wards"
SQL = "layers/queries/homes_in_wards.sql"
Q = f"{SQL}"


@pytest.fixture
def root(tmp_path) -> Path:
    target = tmp_path / "project"
    shutil.copytree(FIXTURE, target)
    return target


def edit(root: Path, relative: str, old: str, new: str) -> None:
    path = root / relative
    text = path.read_text()
    assert old in text, (old, relative)
    path.write_text(text.replace(old, new, 1))


def problems(root: Path) -> list[str]:
    try:
        build_plan(load_workspace(root), "development")
    except SpecError as exc:
        return [str(p) for p in exc.problems]
    return []


def test_the_fixture_validates(root):
    assert problems(root) == []


@pytest.mark.parametrize(
    ("old", "new", "want"),
    [
        pytest.param(
            "count(ward_id) AS wards",
            "len(ward_id) AS wards",
            f"{Q}:19:3: steps[4].query: Athena (engine 3) has no function 'len'; "
            "did you mean 'cardinality' or 'length'?",
            id="len",
        ),
        pytest.param(
            "upper(replace(",
            "ucase(replace(",
            f"{Q}:5:5: steps[4].query: Athena (engine 3) has no function 'ucase'; "
            "did you mean 'upper'?",
            id="other-dialect-name",
        ),
        pytest.param(
            "array_sort(filter(",
            "array_sortt(filter(",
            f"{Q}:18:3: steps[4].query: Athena (engine 3) has no function 'array_sortt'; "
            "did you mean 'array_sort'?",
            id="misspelt",
        ),
        pytest.param(
            "count(ward_id) AS wards",
            "count(ward_id) + 0 * cardinality(split(url_extract_host(uprn), '.')) AS wards",
            f"{Q}:19:42: steps[4].query: url_extract_host() runs on Athena but not on the "
            "local engine (DuckDB, after sqlglot's translation), so `bakery bake` would fail; "
            "use another function or ask for a macro in bakery/engine/duck.py",
            id="not-local",
        ),
        pytest.param(
            "    w.ward_id\n",
            "    w.ward_idd AS ward_id\n",
            f"{Q}:6:5: steps[4].query: column 'ward_idd' is not in any table the query reads "
            "(homes, ward_polygons); did you mean 'ward_id'?",
            id="column-at-sql-line",
        ),
        pytest.param(
            "  uprn,\n  CASE",
            "  uprn || '{{ vars.relase }}' AS uprn,\n  CASE",
            f"{Q}:13:20: steps[4].query: unknown project variable 'relase' (vars.relase); "
            "did you mean 'release'? known: release",
            id="undefined-variable-at-sql-line",
        ),
    ],
)
def test_query_problems_point_at_the_sql_line(root, old, new, want):
    edit(root, SQL, old, new)
    assert problems(root) == [want]


@pytest.mark.parametrize(
    ("column", "declared", "want"),
    [
        pytest.param(
            "wards",
            "string",
            f"{Q}:19:3: steps[4].query: column 'wards' is an integer here but table "
            "'wards.homes_in_wards' declares it string; Athena would fail reading it back: "
            "use CAST(... AS varchar) or change the column type",
            id="bigint-into-string",
        ),
        pytest.param(
            "outcode",
            "bigint",
            f"{Q}:17:13: steps[4].query: column 'outcode' is string here but table "
            "'wards.homes_in_wards' declares it bigint; Athena would fail reading it back: "
            "use CAST(... AS bigint) or change the column type",
            id="varchar-into-bigint",
        ),
        pytest.param(
            "ward_ids",
            "string",
            f"{Q}:18:3: steps[4].query: column 'ward_ids' is array<string> here but table "
            "'wards.homes_in_wards' declares it string; Athena would fail reading it back: "
            "use a different expression or change the column type",
            id="array-into-scalar",
        ),
        pytest.param(
            "outcode",
            "array<string>",
            f"{Q}:17:13: steps[4].query: column 'outcode' is string here but table "
            "'wards.homes_in_wards' declares it array<string>; Athena would fail reading it "
            "back: use a different expression or change the column type",
            id="scalar-into-array",
        ),
        pytest.param(
            "wards",
            "double",
            f"{Q}:19:3: steps[4].query: column 'wards' is an integer here but table "
            "'wards.homes_in_wards' declares it double; Athena would fail reading it back: "
            "use CAST(... AS double) or change the column type",
            id="bigint-into-double",
        ),
    ],
)
def test_output_types_must_fit_the_table(root, column, declared, want):
    kinds = {"wards": "bigint", "outcode": "string", "ward_ids": "array<string>",
             "postcode": "string"}  # fmt: skip
    edit(
        root,
        "layers/wards.yaml",
        f"{{name: {column}, type: {kinds[column]}}}",
        f"{{name: {column}, type: {declared}}}",
    )
    assert problems(root) == [want]


def test_compatible_types_pass(root):
    # int literal into bigint, a CAST into the declared type, nested arrays of strings
    edit(root, SQL, "count(ward_id) AS wards", "CAST(count(ward_id) AS bigint) AS wards")
    edit(root, SQL, "  uprn,\n  CASE", "  CAST(uprn AS varchar) AS uprn,\n  CASE")
    assert problems(root) == []


def test_an_unknown_bucket_alias_lists_the_known_ones(root):
    edit(root, "layers/wards.yaml", "{{ buckets.data }}/homes", "{{ buckets.dta }}/homes")
    assert problems(root) == [
        "layers/wards.yaml:18:5: steps[1].location: location template: unknown bucket alias "
        "'dta' (buckets.dta); did you mean 'data'? known: data, results"
    ]


@pytest.mark.parametrize(
    ("line", "want"),
    [
        (
            "\tformat: parquet",
            "layers/wards.yaml:31:1: YAML syntax error: found a tab character that violates "
            "indentation (while scanning a plain scalar); indent with spaces, not tabs",
        ),
        (
            "     format: parquet",
            "layers/wards.yaml:31:12: YAML syntax error: mapping values are not allowed in this "
            "context; check the indentation: indent with spaces, the same amount at each level",
        ),
    ],
)
def test_yaml_indentation_errors_say_how_to_fix_them(root, line, want):
    edit(root, "layers/wards.yaml", "    format: parquet", line)
    assert problems(root) == [want]


def test_every_function_the_repository_layers_call_is_in_both_catalogues():
    # the catalogues are data files: a sanity check that they hold what the layers use
    for name in ("ST_Contains", "ST_GeometryFromText", "ST_Point", "ST_X", "array_agg",
                 "array_sort", "filter", "split_part", "substr", "cardinality"):  # fmt: skip
        assert function_catalog.in_athena(name), name
    assert not function_catalog.in_athena("len")
    assert function_catalog.in_duckdb("ST_GeometryFromText")  # bakery's macro


def test_the_local_catalogues_are_current(tmp_path):
    """Regenerate them from the pinned DuckDB and sqlglot: they must equal the committed
    files (run `uv run python -m bakery.engine.function_lists` and commit bakery/data/)."""
    fresh = function_lists.write_duckdb_list(tmp_path / "duckdb_functions.txt")
    assert fresh.read_text() == (function_catalog.DATA / "duckdb_functions.txt").read_text()
    fresh = function_lists.write_not_local_list(tmp_path / "athena_not_local.txt")
    assert fresh.read_text() == (function_catalog.DATA / "athena_not_local.txt").read_text()


@pytest.mark.parametrize("name", ["coalesce", "row_number", "rank", "lag", "try_cast", "nullif"])
def test_special_forms_and_window_functions_run_locally(name):
    assert function_catalog.in_athena(name) and function_catalog.runs_locally(name)


def test_a_coalesce_and_a_window_function_validate(root):
    edit(root, SQL, "  uprn,\n  CASE", "  coalesce(uprn, '') AS uprn,\n  CASE")
    edit(root, SQL, "count(ward_id) AS wards", "count(ward_id) + 0 * max(length(uprn)) AS wards")
    assert problems(root) == []
