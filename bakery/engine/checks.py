"""The built-in checks (same_set, one_distinct, min_rows) on DuckDB, from per-table
aggregates.

Their SQL (bakery/templates/check_*.sql, what Athena runs) compares aggregates of one
column per table: count, distinct count and checksum for same_set, distinct count for
one_distinct, the row count for min_rows. Here each table's aggregates are computed
once for every built-in check of the layer that reads that table (one scan instead of
one per check), and remembered for the rest of the bake while the table's files are the
same ones (file names are unique per write, so a rewritten table is scanned again). So a
raw input that checks of two layers compare against is read once, and the row a failing
check reports is the template's, with the same columns and values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bakery.engine.duck import ident

if TYPE_CHECKING:
    from bakery.engine.runner import Context
    from bakery.plan import StepPlan

SAME_SET = ("left_count", "right_count", "left_distinct", "right_distinct")
ONE_DISTINCT = ("distinct_values",)
MIN_ROWS = ("row_count", "at_least")
KINDS = ("same_set", "one_distinct", "min_rows")


def _kind(step: StepPlan) -> str | None:
    kind = getattr(getattr(step.spec, "check", None), "kind", None)
    return kind if step.kind == "check" and kind in KINDS else None


def _ref(layer: str, name: str) -> str:
    return name if "." in name else f"{layer}.{name}"


def _needs(step: StepPlan) -> list[tuple[str, str, str]]:
    """(table ref, aggregate, column) this built-in check reads."""
    check = step.spec.check
    if _kind(step) == "same_set":
        return [
            (_ref(step.layer, check.left), "set", check.column),
            (_ref(step.layer, check.right), "set", check.column),
        ]
    if _kind(step) == "min_rows":
        return [(_ref(step.layer, check.table), "rows", "*")]
    return [(_ref(step.layer, check.table), "distinct", check.column)]


class Aggregates:
    """Per bake: (table ref, its files) -> {(aggregate, column): value}."""

    def __init__(self) -> None:
        self.memo: dict[tuple[str, tuple[str, ...]], dict[tuple[str, str], Any]] = {}
        self.scans = 0  # table scans made, for tests and the benchmark

    def get(self, ctx: Context, step: StepPlan, ref: str, what: tuple[str, str]) -> Any:
        table = ctx.plan.table(ref)
        files = tuple(ctx.store.list(ctx.staging.read_location(table)))
        known = self.memo.setdefault((ref, files), {})
        if what not in known:
            # everything the layer's built-in checks want from this table, in one scan
            layer = ctx.plan.layer(step.layer)
            wanted = [(a, c) for s in layer.steps if _kind(s) for r, a, c in _needs(s) if r == ref]
            todo = [w for w in dict.fromkeys([what, *wanted]) if w not in known]
            known.update(self._scan(ctx, table, todo))
        return known[what]

    def _scan(self, ctx: Context, table: Any, todo: list[tuple[str, str]]) -> dict:
        parts = []
        for aggregate, column in todo:
            if aggregate == "rows":
                parts.append("count(*)")
                continue
            c = ident(column)
            parts.append(f"count(DISTINCT {c})")
            if aggregate == "set":
                parts += [f"count({c})", f"checksum({c})"]
        sql = f"SELECT {', '.join(parts)} FROM {ident(table.glue_database)}.{ident(table.name)}"
        cur = ctx.con.cursor()
        try:
            row = list(cur.execute(sql).fetchone())
        finally:
            cur.close()
        self.scans += 1
        out: dict[tuple[str, str], Any] = {}
        for aggregate, column in todo:
            distinct = row.pop(0)  # for "rows", the row count
            if aggregate == "set":
                n, s = row.pop(0), row.pop(0)
                out[(aggregate, column)] = (n, distinct, s)
                out.setdefault(("distinct", column), distinct)
            else:
                out[(aggregate, column)] = distinct
        return out


def run(ctx: Context, step: StepPlan) -> tuple[tuple[str, ...], tuple] | None:
    """The row a built-in check's template would return (columns, values), None when
    it passes; raises LookupError for a check that is not built in."""
    kind = _kind(step)
    if kind is None:
        raise LookupError(step.qualified_id)
    aggregates: Aggregates = ctx.__dict__.setdefault("aggregates", Aggregates())
    needs = _needs(step)
    if kind == "same_set":
        (ln, ld, ls), (rn, rd, rs) = (aggregates.get(ctx, step, r, (a, c)) for r, a, c in needs)
        if ln != rn or ld != rd or ls != rs:
            return SAME_SET, (ln, rn, ld, rd)
        return None
    ref, aggregate, column = needs[0]
    if kind == "min_rows":
        rows, least = aggregates.get(ctx, step, ref, (aggregate, column)), step.spec.check.min
        return None if rows >= least else (MIN_ROWS, (rows, least))
    distinct = aggregates.get(ctx, step, ref, (aggregate, column))
    return None if distinct == 1 else (ONE_DISTINCT, (distinct,))


def builtin(step: StepPlan) -> bool:
    return _kind(step) is not None
