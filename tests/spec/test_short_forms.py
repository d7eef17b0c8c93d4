"""The short forms of the layer language (issue 8 item 4): what the plan implies is the
same plan the long form spells out."""

from __future__ import annotations

from bakery.plan import Plan
from tests.spec.conftest import MINI

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
