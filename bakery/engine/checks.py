"""The built-in checks (same_set, one_distinct, min_rows) on DuckDB, from per-table
aggregates, and what else those aggregates answer without another scan.

Their SQL (bakery/templates/check_*.sql, what Athena runs) compares aggregates of one
column per table: count, distinct count and checksum for same_set, distinct count for
one_distinct, the row count for min_rows. Here each table's aggregates are computed
once for every built-in check of the layer that reads that table (one scan instead of
one per check), and remembered for the rest of the bake while the table's files are the
same ones (file names are unique per write, so a rewritten table is scanned again; a
published table keeps its staged files' names). So a raw input that checks of two
layers compare against is read once, and the row a failing check reports is the
template's, with the same columns and values.

The same aggregates answer two questions exactly when they show a column with as many
distinct values as the table has rows (so no NULL, no repeat): the check implied by an
export's unique_by passes when no unique_by value repeats (`unique_by_passes`; else its
SQL runs and reports the row), and a geo-join's points hold no repeated row when one
of the compared columns is such a column (`known_unique`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from bakery.engine.duck import ident

if TYPE_CHECKING:
    from bakery.engine.context import Context
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


def _unique_by(ctx: Context, step: StepPlan) -> tuple[str, str] | None:
    """(table ref, column) when `step` is the check implied by an export's unique_by,
    which bakery/planning/builder.py (add_unique_by_checks) names `<export id>_unique`."""
    if step.kind != "check" or step.spec is not None:
        return None
    for export in ctx.plan.layer(step.layer).walk():
        unique_by = getattr(export.spec, "unique_by", None)
        named = f"{export.id}_unique"[:60] == step.id
        if export.kind == "export_by_key" and unique_by and export.reads and named:
            return export.reads[0], unique_by
    return None


def _all_needs(ctx: Context, step: StepPlan) -> list[tuple[str, str, str]]:
    if _kind(step):
        return _needs(step)
    unique = _unique_by(ctx, step)
    return [(unique[0], "set", unique[1])] if unique else []


# copy_into's file names (part-<uuid4 hex>...): unique per write, kept when published
_WRITTEN = re.compile(r"part-[0-9a-f]{32}")


def _files_key(location: str, files: list[str]) -> tuple[str, ...]:
    """What identifies a table's content: the names of files only ever written once,
    relative to the table (the same staged and published), else the files' full URIs."""
    if files and all(_WRITTEN.match(f.rsplit("/", 1)[-1]) for f in files):
        return tuple(f[len(location) :] for f in files)
    return tuple(files)


class Aggregates:
    """Per bake: (table ref, its files) -> {(aggregate, column): value}."""

    def __init__(self) -> None:
        self.memo: dict[tuple[str, tuple[str, ...]], dict[tuple[str, str], Any]] = {}
        self.scans = 0  # table scans made, for tests and the benchmark

    def get(self, ctx: Context, step: StepPlan, ref: str, what: tuple[str, str]) -> Any:
        table = ctx.plan.table(ref)
        known = self.known(ctx, ref, create=True)
        if what not in known:
            # everything the layer's checks want from this table, in one scan
            layer = ctx.plan.layer(step.layer)
            wanted = [(a, c) for s in layer.steps for r, a, c in _all_needs(ctx, s) if r == ref]
            todo = [w for w in dict.fromkeys([what, *wanted]) if w not in known]
            known.update(self._scan(ctx, table, todo))
        return known[what]

    def known(self, ctx: Context, ref: str, create: bool = False) -> dict:
        """What is known of table `ref` with the files it has now."""
        location = ctx.staging.read_location(ctx.plan.table(ref))
        key = (ref, _files_key(location, ctx.store.list(location)))
        return self.memo.setdefault(key, {}) if create else self.memo.get(key, {})

    def _scan(self, ctx: Context, table: Any, todo: list[tuple[str, str]]) -> dict:
        parts = ["count(*)"]  # the row count comes with every scan, at no cost
        for aggregate, column in todo:
            if aggregate == "rows":
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
        out: dict[tuple[str, str], Any] = {("rows", "*"): row.pop(0)}
        for aggregate, column in todo:
            if aggregate == "rows":
                continue
            distinct = row.pop(0)
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
        nothing = ln == 0 and rn == 0 and not step.spec.check.allow_empty
        if ln != rn or ld != rd or ls != rs or nothing:
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


def unique_by_passes(ctx: Context, step: StepPlan) -> bool:
    """True when `step` is an export's implied unique_by check and no value of the
    column repeats (then no rows can conflict); False means: run its SQL."""
    unique = _unique_by(ctx, step)
    if unique is None:
        return False
    aggregates: Aggregates = ctx.__dict__.setdefault("aggregates", Aggregates())
    ref, column = unique
    n, distinct, _ = aggregates.get(ctx, step, ref, ("set", column))
    rows = aggregates.get(ctx, step, ref, ("rows", "*"))
    return distinct == n and rows - n <= 1  # (one NULL cannot repeat either)


def known_unique(ctx: Context, ref: str, columns: list[str]) -> str | None:
    """A column of `columns` that the checks already found without NULL or repeat in
    table `ref` as it is now (no scan is made here), else None."""
    aggregates: Aggregates | None = ctx.__dict__.get("aggregates")
    if aggregates is None:
        return None
    known = aggregates.known(ctx, ref)
    rows = known.get(("rows", "*"))
    for column in columns:
        if rows is not None and known.get(("distinct", column)) == rows:
            return column
    return None
