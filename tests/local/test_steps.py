"""Step kinds beyond the two real layers: for_each (values and query rows, bounded
concurrency, runtime parameters), the EveryElection export with a DSN, and the
per-value geo-join mode giving the same result as the single query."""

from __future__ import annotations

import pytest

from bakery import sample_data
from bakery.democracy_club.samples.ballots import ballots_csv
from bakery.engine import bake
from bakery.plan import build_plan
from bakery.workspace import load_workspace
from tests.local.conftest import read_joined

MINI = """\
name: mini
description: for_each over values and over query rows
depends_on: [addressbase]
steps:
  - type: glue_table
    name: mini_counts
    location: s3://pollingstations.private.data/mini/{{ env }}/mini_counts/
    format: parquet
    columns:
      - {name: letter, type: string}
      - {name: n, type: bigint}
  - type: glue_table
    name: mini_copy
    location: s3://pollingstations.private.data/mini/{{ env }}/mini_copy/
    format: parquet
    columns:
      - {name: letter, type: string}
      - {name: n, type: bigint}
  - type: purge_prefix
    id: empty_counts
    table: mini_counts
  - type: purge_prefix
    id: empty_copy
    table: mini_copy
  - type: for_each
    id: per_letter
    over: {values: [A, B, C]}
    as: letter
    max_concurrency: 2
    steps:
      - type: athena_query
        id: count_letter
        sql: >-
          SELECT first_letter AS letter, count(*) AS n
          FROM {{ ref('addressbase.addressbase_partitioned') }}
          WHERE first_letter = {{ param('letter') }} GROUP BY first_letter
        into: mini_counts
      - type: check
        id: letter_has_rows
        check:
          kind: no_rows
          sql: >-
            SELECT count(*) AS n FROM {{ ref('addressbase.addressbase_partitioned') }}
            WHERE first_letter = {{ param('letter') }} HAVING count(*) = 0
  - type: for_each
    id: per_row
    over:
      sql: >-
        SELECT DISTINCT letter FROM {{ ref('mini_counts') }}
    max_concurrency: 3
    steps:
      - type: athena_query
        id: copy_row
        sql: >-
          SELECT letter, n FROM {{ ref('mini_counts') }} WHERE letter = {{ param('letter') }}
        into: mini_copy
"""


@pytest.fixture
def mini_plan(project_copy):
    (project_copy / "layers" / "mini.yaml").write_text(MINI)
    return build_plan(load_workspace(project_copy), "development")


def test_for_each_over_values_and_rows(mini_plan, store):
    sample_data.write_sample_data(mini_plan, store, addresses=5000, ballots=20, seed=2)
    result = bake(mini_plan, ["mini"], store, with_upstream=True)
    steps = {s.id: s for s in result.steps}
    assert "at most 2 at once" in steps["per_letter"].note
    assert "3 items" in steps["per_row"].note
    import duckdb

    parts = store.path(mini_plan.table("addressbase.addressbase_partitioned").location)
    want = dict(
        duckdb.sql(
            f"SELECT first_letter, count(*) FROM read_parquet('{parts}/*/*.parquet', "
            "hive_partitioning=true) WHERE first_letter IN ('A', 'B', 'C') GROUP BY 1"
        ).fetchall()
    )
    counts = store.path(mini_plan.table("mini.mini_counts").location)
    got = dict(duckdb.sql(f"SELECT letter, n FROM read_parquet('{counts}/*.parquet')").fetchall())
    assert got == want and len(got) == 3
    copies = store.list(mini_plan.table("mini.mini_copy").location)
    assert len(copies) == 3  # one file per row of per_row's query
    assert result.tables["mini.mini_copy"]["rows"] == 3


def test_for_each_check_failure_names_the_child_step(mini_plan, store):
    sample_data.write_sample_data(mini_plan, store, addresses=300, ballots=20, seed=2)
    raw = mini_plan.table("addressbase.addressbase_cleaned_raw").location
    store.delete_prefix(raw)
    store.write_bytes(raw + "a.csv", b'1,"1 Road",AB1 1AA,,R\n')  # no B or C postcodes
    with pytest.raises(
        Exception, match=r"check mini\.letter_has_rows failed: expected the query to return no rows"
    ):
        bake(mini_plan, ["mini"], store, with_upstream=True)


def test_ee_export_with_a_dsn_writes_the_staged_ballots(plan, store, monkeypatch):
    from bakery.lambdas import ee_export

    sample_data.write_sample_data(plan, store, addresses=500, ballots=20, seed=2)
    csv = ballots_csv(30, seed=8).decode()
    calls = []

    def fake_run_export(dsn, out, *, today=None):
        calls.append(dsn)
        out.write(csv)
        return csv.count("\n") - 1

    monkeypatch.setattr(ee_export, "run_export", fake_run_export, raising=False)
    result = bake(
        plan, ["current_elections"], store, with_upstream=True, ee_dsn="postgresql://ee/db"
    )
    assert calls == ["postgresql://ee/db"]
    step = next(s for s in result.steps if s.id == "export_ballots")
    assert step.rows == csv.count("\n") - 1 and step.note == "exported from EveryElection"
    ballots = plan.table("current_elections.current_ballots")
    assert store.read_bytes(ballots.location + "current_elections.csv").decode() == csv
    assert "current_elections.current_ballots" in result.tables


def test_per_value_geo_join_equals_the_single_query(plan, store, monkeypatch):
    sample_data.write_sample_data(plan, store, addresses=3000, ballots=100, seed=4)
    bake(plan, ["current_elections"], store, with_upstream=True)
    single = read_joined(store, plan)
    monkeypatch.setenv("BAKERY_GEO_JOIN", "per_value")
    result = bake(plan, ["current_elections"], store)
    step = next(s for s in result.steps if s.kind == "geo_join")
    assert step.note.startswith("26 queries")
    assert read_joined(store, plan) == single


SEES_OWN_WRITES = """\
name: sees_own
description: a for_each child check reads what the child before it wrote
depends_on: [addressbase]
steps:
  - type: glue_table
    name: per_letter_rows
    location: s3://pollingstations.private.data/sees_own/{{ env }}/per_letter_rows/
    format: parquet
    columns:
      - {name: uprn, type: string}
      - {name: letter, type: string}
  - type: purge_prefix
    id: empty_rows
    table: per_letter_rows
  - type: for_each
    id: per_letter
    as: letter
    max_concurrency: 3
    over: {values: [A, B, C, D, E, F]}
    steps:
      - type: athena_query
        id: rows_of_letter
        sql: >-
          SELECT uprn, first_letter AS letter
          FROM {{ ref('addressbase.addressbase_partitioned') }}
          WHERE first_letter = {{ param('letter') }}
        into: per_letter_rows
      - type: check
        id: letter_written
        check:
          kind: no_rows
          sql: >-
            SELECT 1 AS missing FROM (SELECT count(*) AS n
            FROM {{ ref('per_letter_rows') }} WHERE letter = {{ param('letter') }})
            WHERE n = 0
"""


def test_for_each_child_sees_rows_written_earlier_in_its_iteration(project_copy, store):
    """Athena reads the files as they are when each query starts: a check after an
    athena_query in the same for_each iteration sees that query's rows."""
    (project_copy / "layers" / "sees_own.yaml").write_text(SEES_OWN_WRITES)
    plan = build_plan(load_workspace(project_copy), "development")
    sample_data.write_sample_data(plan, store, addresses=3000, ballots=20, seed=2)
    result = bake(plan, ["sees_own"], store, with_upstream=True)
    assert result.ok
    assert result.tables["sees_own.per_letter_rows"]["rows"] > 0


def test_views_are_refreshed_only_for_tables_that_changed(plan, store, monkeypatch):
    """Before each step only the tables staged, written or published since the last
    refresh are listed again; a table nothing writes (the raw input) is listed once."""
    from collections import Counter

    from bakery.engine import tables

    sample_data.write_sample_data(plan, store, addresses=500, ballots=20, seed=2)
    registered: Counter[str] = Counter()
    real = tables.register

    def counting(con, table, store, location):
        registered[table.ref] += 1
        return real(con, table, store, location)

    monkeypatch.setattr(tables, "register", counting)
    result = bake(plan, ["current_elections"], store, with_upstream=True)
    assert len(result.steps) > 10
    assert registered["addressbase.addressbase_cleaned_raw"] == 1
    assert registered["current_elections.current_ballots"] <= 3
    assert max(registered.values()) <= 6, registered
