"""What Athena refuses, refused by `bakery validate` at the line that holds it: runtime
parameters outside WHERE, and query output into a csv table."""

from __future__ import annotations

FAN_OUT = """\
name: mini
description: one query per letter
steps:
  - type: glue_table
    name: mini_out
    location: s3://pollingstations.private.data/mini/{{ env }}/mini_out/
    format: parquet
    columns:
      - {name: uprn, type: string}
      - {name: letter, type: string}
  - type: purge_prefix
    id: empty_out
    table: mini_out
  - type: for_each
    id: per_letter
    as: letter
    over: {values: [A, B]}
    steps:
      - type: athena_query
        id: fill
        query: queries/mini.sql
        into: mini_out
"""

IN_SELECT = """\
-- one letter's addresses
SELECT
    uprn,
    {{ param('letter') }} AS letter
FROM {{ ref('addressbase.addressbase_partitioned') }}
WHERE first_letter = {{ param('letter') }}
"""


def test_param_in_the_select_list_is_refused_at_its_sql_line(project):
    project.write("layers/mini.yaml", FAN_OUT)
    project.write("layers/queries/mini.sql", IN_SELECT)
    problems = project.problems()
    assert len(problems) == 1
    assert problems[0].startswith("layers/queries/mini.sql:4:5: steps[2].steps[0].query: ")
    assert "param() is only allowed in a WHERE clause" in problems[0]
    assert "SELECT ? FROM t is not supported" in problems[0]


def test_param_in_where_and_in_a_subquery_where_is_accepted(project):
    project.write("layers/mini.yaml", FAN_OUT)
    project.write(
        "layers/queries/mini.sql",
        IN_SELECT.replace("{{ param('letter') }} AS letter", "first_letter AS letter").replace(
            "WHERE first_letter = {{ param('letter') }}",
            "WHERE first_letter = {{ param('letter') }}\n  AND uprn IN (SELECT uprn FROM "
            "{{ ref('addressbase.addressbase_partitioned') }} WHERE first_letter = "
            "{{ param('letter') }})",
        ),
    )
    assert project.problems() == []


def test_param_in_a_join_condition_is_refused(project):
    project.mini(
        "sql: SELECT uprn, postcode FROM {{ ref('addressbase.addressbase_partitioned') }}",
        "sql: SELECT a.uprn, a.postcode FROM {{ ref('addressbase.addressbase_partitioned') }} "
        "AS a JOIN {{ ref('addressbase.addressbase_partitioned') }} AS b ON a.uprn = b.uprn "
        "AND b.first_letter = {{ param('letter') }}",
    )
    project.edit(
        "layers/mini.yaml",
        "  - type: athena_query\n    id: fill\n",
        "  - type: for_each\n    id: per_letter\n    as: letter\n    over: {values: [A]}\n"
        "    steps:\n      - type: athena_query\n        id: fill\n",
    )
    project.edit("layers/mini.yaml", "    sql: SELECT a.uprn", "        sql: SELECT a.uprn")
    project.edit("layers/mini.yaml", "    into: mini_out", "        into: mini_out")
    problems = project.problems()
    assert len(problems) == 1 and "only allowed in a WHERE clause" in problems[0], problems


def test_a_query_into_a_csv_table_is_refused_with_what_to_use(project):
    project.mini("    format: parquet\n", "    format: csv\n    csv: {header: false}\n")
    problems = project.problems()
    assert len(problems) == 1, problems
    assert problems[0].startswith("layers/mini.yaml:")
    assert "steps[2].into: 'mini.mini_out' is a csv table" in problems[0]
    assert "declare it `format: parquet`" in problems[0]
