"""Built-in checks on DuckDB (bakery/engine/checks.py): each table is scanned once for
all of a layer's built-in checks, a raw input once per bake, and every check returns
exactly the row of its template (bakery/templates/check_*.sql), passing or failing."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from bakery import sample_data
from bakery.engine import bake, checks, duck
from bakery.engine.publish import Staging
from bakery.engine.runner import Context
from bakery.engine.transpile import to_duckdb
from tests.local.conftest import JOINED, RAW


def test_each_table_is_scanned_once_per_bake(plan, store, monkeypatch):
    sample_data.write_sample_data(plan, store, addresses=2000, ballots=60, seed=5)
    scanned: list[str] = []
    original = checks.Aggregates._scan

    def spy(self, ctx, table, todo):
        scanned.append(table.ref)
        return original(self, ctx, table, todo)

    monkeypatch.setattr(checks.Aggregates, "_scan", spy)
    result = bake(plan, ["current_elections"], store, with_upstream=True)
    assert result.ok
    builtin = [s for ly in plan.layers for s in ly.steps if checks.builtin(s)]
    assert len(builtin) == 4  # per layer: one_distinct + same_set against the raw CSV
    assert sorted(scanned) == sorted(
        [RAW, "addressbase.addressbase_partitioned", JOINED]
    )  # 3 scans where each check's own SQL makes 6


def _template_rows(plan, store) -> list[tuple]:
    con = duck.connect()
    try:
        ctx = Context(plan, store, con, Staging(store, plan, "cmp"), None)
        ctx.refresh_views()
        out = []
        for layer in plan.layers:
            for step in layer.steps:
                if not checks.builtin(step):
                    continue
                cur = con.execute(to_duckdb(step.sql))
                want = cur.fetchone()
                want = None if want is None else (tuple(d[0] for d in cur.description), want)
                assert checks.run(ctx, step) == want, step.qualified_id
                out.append(want)
        return out
    finally:
        con.close()


def test_checks_return_the_rows_of_their_templates(plan, store):
    sample_data.write_sample_data(plan, store, addresses=1500, ballots=40, seed=6)
    bake(plan, ["current_elections"], store, with_upstream=True)
    assert _template_rows(plan, store) == [None] * 4
    # a duplicated address from another source in the joined table: both checks fail
    joined = plan.table(JOINED)
    folder = f"{joined.location}first_letter=S/"
    rows = pq.read_table(store.path(store.list(folder)[0])).slice(0, 3).to_pylist()
    extra = [{**r, "addressbase_source": "s3://elsewhere/"} for r in rows]
    pq.write_table(pa.Table.from_pylist(extra), store.path(folder + "extra.parquet"))
    failed = [r for r in _template_rows(plan, store) if r is not None]
    assert [cols for cols, _ in failed] == [("distinct_values",), checks.SAME_SET]
