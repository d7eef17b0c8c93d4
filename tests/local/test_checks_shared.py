"""Built-in checks on DuckDB (bakery/engine/checks.py): each table is scanned once for
all of a layer's built-in checks, a raw input once per bake, and every check returns
exactly the row of its template (bakery/templates/check_*.sql), passing or failing."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

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


def _guards_plan(tmp_path, at_least: int):
    """The guards fixture (a min_rows check on its points CSV) with a same_set of the
    joined table against that CSV, so both read the CSV."""
    import shutil
    from pathlib import Path

    from bakery.plan import build_plan
    from bakery.workspace import load_workspace

    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "guards"
    root = tmp_path / "guards"
    shutil.copytree(fixture, root)
    layer = root / "layers" / "places.yaml"
    text = layer.read_text().replace(
        "check: {kind: min_rows, table: points}",
        f"check: {{kind: min_rows, table: points, min: {at_least}}}",
    )
    text += (
        "\n  - type: check\n    id: ids_kept\n"
        "    check: {kind: same_set, left: located, right: points, column: id}\n"
    )
    layer.write_text(text)
    return build_plan(load_workspace(root), "development")


def test_min_rows_shares_the_scan_and_returns_its_template_row(tmp_path, store, monkeypatch):
    from test_guards import GOOD_POINTS, SQUARE, write

    from bakery.engine.runner import BakeError

    scanned: list[str] = []
    original = checks.Aggregates._scan

    def spy(self, ctx, table, todo):
        scanned.append(table.ref)
        return original(self, ctx, table, todo)

    monkeypatch.setattr(checks.Aggregates, "_scan", spy)
    plan = _guards_plan(tmp_path, at_least=3)
    write(plan, store, GOOD_POINTS, [("sq", SQUARE)])
    assert bake(plan, ["places"], store).ok
    assert {s.id for s in plan.layer("places").steps if checks.builtin(s)} == {
        "points_not_empty",
        "ids_kept",
    }
    assert sorted(scanned) == ["places.located", "places.points"]  # the CSV once
    assert _template_rows(plan, store) == [None, None]

    plan = _guards_plan(tmp_path / "more", at_least=4)  # 3 rows, 4 wanted
    with pytest.raises(BakeError, match=r"points_not_empty failed: .*row_count=3, at_least=4$"):
        bake(plan, ["places"], store)
    assert _template_rows(plan, store) == [(checks.MIN_ROWS, (3, 4)), None]


def test_the_aggregates_answer_unique_by_and_repeated_points_without_a_scan(
    plan, store, monkeypatch
):
    """The bake's same_set checks on uprn find it without NULL or repeat: the export's
    unique_by check passes without its SQL, and the geo-join skips its repeated-row scan
    (the partitioned table's aggregates, taken while staged, still hold once published)."""
    from bakery.engine import steps

    sample_data.write_sample_data(plan, store, addresses=2000, ballots=60, seed=7)
    answers: list = []
    original = checks.known_unique

    def spy(ctx, ref, columns):
        answers.append((ref, original(ctx, ref, columns)))
        return answers[-1][1]

    monkeypatch.setattr(checks, "known_unique", spy)
    executed: list[str] = []
    run_sql = steps.to_duckdb
    monkeypatch.setattr(steps, "to_duckdb", lambda sql: executed.append(sql) or run_sql(sql))
    result = bake(plan, ["current_elections"], store, with_upstream=True)
    assert answers == [("addressbase.addressbase_partitioned", "uprn")]
    unique = next(s for s in result.steps if s.id.endswith("_unique"))
    assert unique.note == "passed: no value repeats (shared aggregates)"
    assert not [sql for sql in executed if "conflicting_versions" in sql]


def test_a_repeated_value_still_runs_the_unique_by_sql(plan, store):
    """Rows repeated whole in the joined table: the value repeats, so the template runs
    (and passes: identical duplicates are fine), from a scan of the new files."""
    sample_data.write_sample_data(plan, store, addresses=1500, ballots=40, seed=8)
    bake(plan, ["current_elections"], store, with_upstream=True)
    con = duck.connect()
    try:
        ctx = Context(plan, store, con, Staging(store, plan, "cmp"), None)
        ctx.refresh_views()
        layer = plan.layer("current_elections")
        step = next(s for s in layer.steps if s.id.endswith("_unique"))
        assert checks.unique_by_passes(ctx, step)
        assert checks.known_unique(ctx, JOINED, ["address", "uprn"]) == "uprn"
        joined = plan.table(JOINED)
        folder = f"{joined.location}first_letter=S/"
        rows = pq.read_table(store.path(store.list(folder)[0])).slice(0, 2).to_pylist()
        pq.write_table(pa.Table.from_pylist(rows), store.path(folder + "again.parquet"))
        ctx.refresh_views([JOINED])
        assert checks.known_unique(ctx, JOINED, ["uprn"]) is None  # new files: not known
        assert not checks.unique_by_passes(ctx, step)
        assert checks.known_unique(ctx, JOINED, ["uprn"]) is None  # 2 rows repeat
        assert con.execute(to_duckdb(step.sql)).fetchone() is None
    finally:
        con.close()
