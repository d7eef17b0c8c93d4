"""An athena_query's `quarantine` as `bakery validate` checks it, and the check the plan
adds after the query (bakery/kinds/quarantine.py)."""

from __future__ import annotations

import pytest

LAYER = """\
name: q
description: test layer
steps:
  - type: glue_table
    name: q_out
    location: s3://pollingstations.private.data/q/{{ env }}/q_out/
    format: parquet
    columns:
      - {name: uprn, type: string}
      - {name: postcode, type: string}
  - type: glue_table
    name: q_rejects
    location: s3://pollingstations.private.data/q/{{ env }}/q_rejects/
    format: parquet
    columns:
      - {name: uprn, type: string}
      - {name: why, type: string}
  - type: athena_query
    id: fill
    sql: >-
      SELECT uprn, postcode,
          CASE WHEN postcode IS NULL THEN 'no postcode' END AS why
      FROM {{ ref('addressbase.addressbase_partitioned') }}
    into: q_out
    quarantine: {reason: why, key: uprn, into: q_rejects}
"""
F = "layers/q.yaml"


@pytest.fixture
def q(project):
    project.write(F, LAYER)
    return project


def test_the_plan_adds_the_rejects_write_its_purge_and_a_check(q):
    layer = q.plan().layer("q")
    assert [(s.id, s.kind) for s in layer.steps] == [
        ("empty_q_out", "purge_prefix"),
        ("empty_q_rejects", "purge_prefix"),
        ("fill", "athena_query"),
        ("fill_quarantine", "check"),
    ]
    fill, check = layer.steps[2], layer.steps[3]
    assert fill.writes == ["q.q_out", "q.q_rejects"]
    assert fill.quarantine.accepted_columns == ["uprn", "postcode"]
    assert fill.quarantine.rejected_columns == ["uprn", "why"]
    # neither limit given: both defaults
    assert (
        check.description
        == "fill rejects at most 100 rows and 0.1 % of the rows (into q.q_rejects)"
    )
    assert "rejected > 100 OR rejected * 100.0 > 0.1 * total" in check.sql
    assert check.message_column == "failure_message"
    assert check.reads == ["q.q_rejects", "q.q_out"]


def test_a_limit_given_alone_is_the_only_one(q):
    q.edit(F, "into: q_rejects}", "into: q_rejects, max_percent: 2.5}")
    check = q.plan().layer("q").steps[3]
    assert "rejected * 100.0 > 2.5 * total" in check.sql and "rejected >" not in check.sql


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "key: uprn,",
            "key: uprm,",
            "steps[2].quarantine.key: table 'q.q_rejects' has no column 'uprm'; "
            "did you mean 'uprn'?",
        ),
        (
            "into: q_rejects}",
            "into: q_out}",
            "steps[2].quarantine.into: the rejects table must not be the step's own table",
        ),
        (
            "END AS why",
            "END AS whyy",
            "steps[2].sql: query output lacks why: with quarantine it must give the reason "
            "column, every column of 'q.q_out' and of the rejects table 'q.q_rejects' (by "
            "name, in any order)",
        ),
        (
            "into: q_rejects}",
            "into: addressbase.addressbase_partitioned}",
            "steps[2].quarantine.into: 'addressbase.addressbase_partitioned' belongs to layer "
            "'addressbase'; a layer writes only the tables it declares",
        ),
        (
            "key: uprn,",
            "key: why,",
            "steps[2].quarantine: key and reason must be two different columns",
        ),
        (
            "into: q_rejects}",
            "into: q_rejects, max_percent: 101}",
            "steps[2].quarantine.max_percent: Input should be less than or equal to 100",
        ),
    ],
)
def test_what_validate_refuses(q, old, new, expected):
    q.edit(F, old, new)
    problems = q.problems()
    assert any(p.startswith(F) and p.endswith(expected) for p in problems), problems


def test_the_reason_is_not_a_column_of_the_published_table(q):
    q.edit(
        F,
        "      - {name: postcode, type: string}\n",
        "      - {name: postcode, type: string}\n      - {name: why, type: string}\n",
    )
    problems = q.problems()
    assert any(
        p.endswith(
            "steps[2].quarantine.reason: 'why' is a column of 'q.q_out': the reason is a "
            "working column of the query, written to the rejects table only"
        )
        for p in problems
    ), problems


def test_not_inside_for_each(q):
    head, query = LAYER.split("  - type: athena_query\n")
    inner = "".join(f"  {line}\n" for line in ("  - type: athena_query\n" + query).splitlines())
    for_each = "  - type: for_each\n    id: each\n    over: {values: [a, b]}\n    as: v\n"
    q.write(F, head + for_each + "    steps:\n" + inner)
    problems = q.problems()
    assert any(
        p.endswith(
            "steps[2].steps[0].quarantine: quarantine applies to a top-level athena_query, "
            "not inside for_each: its check counts the rejects of the whole table once every "
            "row is written"
        )
        for p in problems
    ), problems
