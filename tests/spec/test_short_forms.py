"""The short forms of the layer language (issue 8 item 4): what the plan implies is the
same plan the long form spells out."""

from __future__ import annotations

import pytest

from bakery.plan import Plan
from tests.spec.conftest import MINI
from tests.spec.test_plan import FOR_EACH

M = "layers/mini.yaml"
PURGE = "  - type: purge_prefix\n    id: empty_out\n    table: mini_out\n"


def _mini(project, *edits: tuple[str, str]) -> None:
    text = MINI
    for old, new in edits:
        assert old in text
        text = text.replace(old, new, 1)
    project.write(M, text)


def _steps(plan: Plan, layer: str = "mini") -> list[tuple]:
    return [
        (s.id, s.kind, s.location, s.writes, s.reads, s.sql, s.description)
        for s in plan.layer(layer).steps
    ]


def test_an_implied_purge_is_the_explicit_one(project):
    explicit = _steps(project.plan())
    _mini(project, (PURGE, ""), ("name: mini_out\n", "name: mini_out\n    purge_step: empty_out\n"))
    assert _steps(project.plan()) == explicit


def test_an_implied_purge_defaults_to_empty_and_the_table_name(project):
    project.mini(PURGE, "")
    steps = project.plan().layer("mini").steps
    assert [(s.id, s.kind, s.writes) for s in steps] == [
        ("empty_mini_out", "purge_prefix", ["mini.mini_out"]),
        ("fill", "athena_query", ["mini.mini_out"]),
    ]
    assert steps[0].location == "s3://pollingstations.private.data/mini/development/mini_out/"


def test_implied_purges_open_the_layer_in_table_order(project):
    # a second query-written table declared first, written last
    first = (
        "steps:\n  - type: glue_table\n    name: mini_first\n"
        "    location: s3://pollingstations.private.data/mini/{{ env }}/mini_first/\n"
        "    format: parquet\n    columns:\n      - {name: uprn, type: string}\n"
    )
    _mini(project, (PURGE, ""), ("steps:\n", first))
    text = (project.root / M).read_text()
    project.write(
        M,
        text + "  - type: athena_query\n    id: fill_first\n"
        "    sql: SELECT uprn FROM {{ ref('mini_out') }}\n    into: mini_first\n",
    )
    assert [s.id for s in project.plan().layer("mini").steps] == [
        "empty_mini_first",
        "empty_mini_out",
        "fill",
        "fill_first",
    ]


def test_no_purge_for_a_table_no_query_writes(project):
    # addressbase_cleaned_raw is read, never written: nothing empties it
    steps = project.plan().layer("addressbase").steps
    purged = [ref for s in steps if s.kind == "purge_prefix" for ref in s.writes]
    assert "addressbase.addressbase_cleaned_raw" not in purged


def test_purge_step_on_a_table_a_purge_prefix_empties(project):
    project.mini("    name: mini_out\n", "    name: mini_out\n    purge_step: empty_it\n")
    assert project.problems() == [
        f"{M}:6:5: steps[0].purge_step: purge_step names the purge the plan adds before a "
        "query writes this table, and a purge_prefix step empties it: remove purge_step"
    ]


def test_a_step_id_taken_by_an_implied_purge(project):
    _mini(project, (PURGE, ""), ("    id: fill\n", "    id: empty_mini_out\n"))
    assert project.problems() == [
        f"{M}:12:5: steps[1].id: step id 'empty_mini_out' is the purge the plan adds for "
        "table 'mini_out': rename this step, or give the table another purge_step"
    ]


# ---------------------------------------------------------------- values and ranges

CE = "layers/current_elections.yaml"
AB = "layers/addressbase.yaml"
LETTERS = "values: [A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P, Q, R, S, T, U, V, W, X, Y, Z]"
KEY = "      - {name: first_letter, type: string, description: First character of the postcode.}"


def _join(project) -> tuple:
    step = next(s for s in project.plan().layer("current_elections").steps if s.kind == "geo_join")
    return step.over_values, step.over_params, step.sql, step.max_concurrency


def test_a_fan_out_range_is_the_list_it_spells(project):
    explicit = _join(project)
    assert explicit[0] == [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    project.edit(CE, LETTERS, "values: A..Z")
    assert _join(project) == explicit


def test_a_fan_out_takes_the_partition_keys_declared_values(project):
    explicit = _join(project)
    project.edit(CE, "      " + LETTERS + "\n", "")
    project.edit(AB, KEY, KEY[:-1] + ", values: A..Z}")
    assert _join(project) == explicit
    # its own list still wins over the declared one
    project.edit(AB, "values: A..Z}", "values: [A, B]}")
    project.edit(
        CE, "      column: first_letter\n", "      column: first_letter\n      values: [Q]\n"
    )
    assert _join(project)[0] == ["Q"]


def test_a_fan_out_without_values_anywhere(project):
    project.edit(CE, "      " + LETTERS + "\n", "")
    assert project.problems() == [
        f"{CE}:68:5: steps[4].fan_out: fan_out over 'first_letter' needs its values: give "
        "`values` here (a list or a range such as A..Z), or declare them on the partition "
        "key 'first_letter' of 'addressbase.addressbase_partitioned'"
    ]


def test_for_each_over_a_range(project):
    project.write("layers/boundary_changes.yaml", FOR_EACH)
    explicit = project.plan().layer("boundary_changes").steps[3]
    project.edit(
        "layers/boundary_changes.yaml", "over: {values: [A, B, C]}", "over: {values: A..C}"
    )
    ranged = project.plan().layer("boundary_changes").steps[3]
    assert (ranged.over_values, ranged.over_params, [c.sql for c in ranged.children]) == (
        explicit.over_values,
        explicit.over_params,
        [c.sql for c in explicit.children],
    )


def test_number_ranges(project):
    project.edit(CE, LETTERS, "values: 8..11")
    assert _join(project)[0] == ["8", "9", "10", "11"]


@pytest.mark.parametrize(
    ("written", "message"),
    [
        (
            "A-Z",
            "'A-Z' is neither a list of values nor a range: write a list, or a range such "
            "as A..Z, a..z or 1..12",
        ),
        (
            "A..z",
            "range 'A..z' mixes kinds of ends: use two letters of one case (A..Z) or two "
            "numbers (1..12)",
        ),
        ("Z..A", "range 'Z..A' is empty: write the smaller end first (A..Z)"),
        ("1..5000", "range '1..5000' has more than 1000 values; narrow it"),
    ],
)
def test_a_bad_range_is_one_line_at_its_line(project, written, message):
    project.edit(CE, LETTERS, f"values: {written}")
    assert project.problems() == [f"{CE}:70:7: steps[4].fan_out.values: {message}"]


def test_values_on_a_plain_column(project):
    project.edit(
        AB,
        "      - {name: uprn, type: string}",
        "      - {name: uprn, type: string, values: [a]}",
    )
    problems = project.problems()
    assert len(problems) == 1 and problems[0].endswith(
        "values apply to partition keys (what a fan_out over them runs for): move the "
        "column to partition_keys or remove values"
    )
    assert problems[0].startswith(f"{AB}:")
