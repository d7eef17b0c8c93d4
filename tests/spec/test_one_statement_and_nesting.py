"""A query template holds one SQL statement (issue 19, item 10), and YAML that nests
hundreds of levels deep is a one-line problem, not a RecursionError (item 11)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from bakery.cli import app

Q = "layers/queries/mini.sql"
INLINE = "sql: SELECT uprn, postcode FROM {{ ref('addressbase.addressbase_partitioned') }}"
SELECT = "SELECT uprn, postcode FROM {{ ref('addressbase.addressbase_partitioned') }}"
# A position is in the rendered text, where the ref() is the table's Glue name.
RENDERED = "SELECT uprn, postcode FROM dc_data_baker.addressbase_partitioned"
SECOND = (
    "a second SQL statement after ';'{where}: a query template holds one statement "
    "(Athena runs one per query); remove it, or give it a step of its own"
)


def query(project, text: str) -> None:
    project.write(Q, text)
    project.mini(INLINE, "query: queries/mini.sql")


def test_a_second_statement_is_refused_at_its_line(project):
    query(project, f"{SELECT};\n  DROP TABLE x\n")
    assert project.problems() == [f"{Q}:2:3: steps[2].query: {SECOND.format(where='')}"]


def test_a_second_statement_in_inline_sql_says_where(project):
    project.mini(INLINE, f"{INLINE}; DROP TABLE x")
    where = f" (line 1, col {len(RENDERED) + 3})"
    assert project.problems() == [
        f"layers/mini.yaml:16:5: steps[2].sql: {SECOND.format(where=where)}"
    ]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(f"{SELECT};\n", id="trailing-semicolon"),
        pytest.param(f"{SELECT} ;; -- done; really\n/* and; this */\n", id="then-comments"),
        pytest.param(f"-- a; b\n{SELECT} WHERE uprn <> ';' AND \"postcode\" <> 'x;y'\n",
                     id="semicolons-in-strings-and-comments"),
    ],
)  # fmt: skip
def test_one_statement_with_semicolons_around_it_passes(project, text):
    query(project, text)
    assert project.problems() == []
    sql = project.plan().layer("mini").steps[-1].sql
    assert not sql.rstrip().endswith(";") and "done" not in sql


def test_describe_and_render_report_the_problem_in_one_line(project):
    query(project, f"{SELECT}; DROP TABLE x\n")
    runner = CliRunner()
    expected = f"{Q}:1:{len(RENDERED) + 3}: steps[2].query: {SECOND.format(where='')}"
    described = runner.invoke(app, ["describe", "--json"], catch_exceptions=False)
    assert described.exit_code == 1
    assert described.stderr.splitlines()[0] == expected
    rendered = runner.invoke(app, ["render", "mini", "--engine", "duckdb"], catch_exceptions=False)
    assert rendered.exit_code == 1
    assert rendered.stderr.splitlines()[0] == expected


DEPTH = "values nest more than 64 levels deep; a spec needs a few, flatten it"


BLOCK = "".join("    " + "  " * i + f"k{i}:\n" for i in range(1, 601))  # 600 levels, 0.4 MB


@pytest.mark.parametrize(
    ("nested", "expected"),
    [
        pytest.param("  - " + "[" * 600 + "]" * 600 + "\n", f"3:68: steps[0]: {DEPTH}", id="flow"),
        pytest.param("  - type: x\n    k0:\n" + BLOCK, f"66:129: steps[0]: {DEPTH}", id="block"),
    ],
)
def test_deep_nesting_in_a_layer_file_is_one_problem_at_its_line(project, nested, expected):
    project.write("layers/deep.yaml", "name: deep\nsteps:\n" + nested)
    assert project.problems() == [f"layers/deep.yaml:{expected}"]


def test_deep_nesting_in_bakery_yaml_is_one_problem_at_its_line(project):
    with (project.root / "bakery.yaml").open("a") as f:
        f.write("extra: " + "[" * 600 + "]" * 600 + "\n")
    problems = project.problems()
    assert len(problems) == 1
    assert problems[0].startswith("bakery.yaml:")
    assert problems[0].endswith(f": extra[0]: {DEPTH}")
