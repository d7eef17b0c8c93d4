"""The local geo-join (per-location plan, bakery/engine/steps.py) gives the same rows as
its definition, bakery/templates/geo_join.sql (what Athena runs), run per fan-out value
on the same DuckDB views -- including points repeated whole, which Athena's GROUP BY
collapses, and points sharing a location or a uprn."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq

from bakery import sample_data
from bakery.engine import bake, duck
from bakery.engine.publish import Staging
from bakery.engine.runner import Context
from bakery.engine.steps import geo_join_sql, points_repeat
from bakery.engine.transpile import to_duckdb
from tests.local.conftest import PARTITIONED


def _rows(con, sql: str, params: list) -> Counter:
    out = Counter()
    for row in con.execute(sql, params).fetchall():
        out[tuple(tuple(v) if isinstance(v, list) else v for v in row)] += 1
    return out


def _compare(plan, store) -> bool:
    con = duck.connect()
    try:
        ctx = Context(plan, store, con, Staging(store, plan, "compare"), None)
        ctx.refresh_views()
        step = next(s for s in plan.layer("current_elections").steps if s.kind == "geo_join")
        template = to_duckdb(step.sql)
        want: Counter = Counter()
        for value in step.over_values:
            want += _rows(con, template, [value])
        repeat = points_repeat(ctx, step, step.over_values)
        sql, _ = geo_join_sql(ctx, step, values=len(step.over_values), distinct=repeat)
        got = _rows(con, sql, list(step.over_values))
        assert sum(1 for row in want if row[7]) > 100  # points with ballots: a real test
        assert got == want
        return repeat
    finally:
        con.close()


def test_native_geo_join_equals_the_athena_template(plan, store):
    sample_data.write_sample_data(plan, store, addresses=3000, ballots=120, seed=11)
    bake(plan, ["addressbase"], store, with_upstream=True)
    assert _compare(plan, store) is False  # no repeated rows: no DISTINCT needed

    # rows repeated whole (collapsed by Athena), a uprn at a second location, and a
    # second uprn at an existing location, written as one more file of partition S
    table = plan.table(PARTITIONED)
    folder = f"{table.location}first_letter=S/"
    first = store.list(folder)[0]
    rows = pq.read_table(store.path(first)).slice(0, 40).to_pylist()
    extra = rows[:20] + rows[:5]
    for i, row in enumerate(rows[20:30]):
        extra.append({**row, "longitude": row["longitude"] and row["longitude"] + 0.001})
        extra.append({**row, "uprn": f"9{i}{row['uprn']}"})
    pq.write_table(pa.Table.from_pylist(extra), store.path(folder + "extra.parquet"))
    assert _compare(plan, store) is True
