"""One function per step kind of the plan, run on DuckDB against the store.

Each function takes the bake context and the StepPlan and returns a StepOutcome.
SQL from the plan is Athena SQL: it is transpiled with sqlglot and its `?`
placeholders are bound as prepared parameters, never formatted into the text.

Over the ~400-line guide by the geo-join's native DuckDB query (`geo_join_sql`, tested
against templates/geo_join.sql): it is kept beside the other step bodies because the
RUNNERS table at the end is the engine's one dispatch by kind (tests/spec/test_kinds.py).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bakery.engine.duck import ident
from bakery.engine.tables import copy_into
from bakery.engine.transpile import to_duckdb
from bakery.errors import BakeryError
from bakery.plan import StepPlan, TablePlan

if TYPE_CHECKING:
    from bakery.engine.context import Context


class StepFailed(BakeryError):
    """A step could not complete; the message is one line, fit for the user."""


@dataclass
class StepOutcome:
    rows: int | None = None
    files: int | None = None
    note: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _cores() -> int:
    return os.cpu_count() or 2


def _target(ctx: Context, step: StepPlan) -> TablePlan:
    if not step.writes:
        raise StepFailed(f"step {step.qualified_id} writes no table")
    return ctx.plan.table(step.writes[0])


# ---------------------------------------------------------------- purge_prefix


def purge_prefix(ctx: Context, step: StepPlan, con: Any, params: list[Any]) -> StepOutcome:
    for ref in step.writes:
        ctx.staging.stage(ctx.plan.table(ref), empty=True)
    ctx.refresh_views()
    return StepOutcome(note="staged table starts empty; published data kept until publish")


# ---------------------------------------------------------------- athena_query


def athena_query(ctx: Context, step: StepPlan, con: Any, params: list[Any]) -> StepOutcome:
    table = _target(ctx, step)
    with ctx.lock:
        location = ctx.staging.stage(table, empty=False)
    quarantine = getattr(step, "quarantine", None)
    if quarantine is not None:
        return _quarantined(ctx, step, con, params, table, location)
    rows = copy_into(con, table, ctx.store, location, to_duckdb(step.sql or ""), params)
    ctx.wrote(table.ref, con)
    return StepOutcome(rows=rows)


def _quarantined(
    ctx: Context, step: Any, con: Any, params: list[Any], table: TablePlan, location: str
) -> StepOutcome:
    """The two statements Athena runs (bakery.kinds.quarantine), the good rows then the
    rejected ones; the rejects counted by reason for the bake's summary."""
    quarantine = step.quarantine
    rejects = ctx.plan.table(quarantine.into)
    with ctx.lock:
        rejects_location = ctx.staging.stage(rejects, empty=False)
    sql = step.sql or ""
    rows = copy_into(
        con, table, ctx.store, location, to_duckdb(quarantine.accepted_sql(sql)), params
    )
    ctx.wrote(table.ref, con)
    rejected = copy_into(
        con, rejects, ctx.store, rejects_location, to_duckdb(quarantine.rejected_sql(sql)), params
    )
    ctx.wrote(rejects.ref, con)
    reasons: dict[str, int] = {}
    if rejected:
        view = f"{ident(rejects.glue_database)}.{ident(rejects.name)}"
        cur = con.cursor()
        try:
            counted = cur.execute(
                f"SELECT {ident(quarantine.reason)}, count(*) FROM {view} "
                "GROUP BY 1 ORDER BY 2 DESC, 1"
            )
            reasons = dict(counted.fetchall())
        finally:
            cur.close()
    note = f"rejects into {rejects.ref}" if rejected else None
    extra = {"quarantine": {"table": rejects.ref, "rows": rejected, "reasons": reasons}}
    return StepOutcome(rows=rows, note=note, extra=extra)


# ---------------------------------------------------------------- geo_join


def _ref(layer: str, name: str) -> str:
    return name if "." in name else f"{layer}.{name}"


def geo_join_sql(
    ctx: Context, step: StepPlan, *, values: int | None, distinct: bool = False
) -> tuple[str, TablePlan]:
    """The geo-join written natively for DuckDB (from StepPlan.spec); its meaning is
    bakery/templates/geo_join.sql (what Athena runs): every point once (one row per
    distinct carried columns + partition keys) with the sorted distinct non-null values
    of the polygons containing it, [] where none.

    When the point's x and y are carried columns (so equal rows share a location), the
    values are aggregated per location, not per row: an inner spatial join (DuckDB's
    SPATIAL_JOIN, an R-tree over the polygons) gives (x, y, value id) pairs, grouped by
    (x, y) into a sorted list of small integers (ids are ranks of the values, so sorting
    ids sorts values), then every point takes its list by a hash join on (x, y) and the
    ids become values at the end. Memory then holds one integer list per located point
    that hits, not every carried column: at 4M addresses the step peaks at 0.86 GB
    instead of 2.1 GB. Rows repeated whole are collapsed only when `distinct` (see
    `points_repeat`), since a DISTINCT over every column costs what the plan saves.
    Otherwise (x or y not carried) it groups by every carried column, as Athena does.

    values: how many fan-out values to bind (`IN (?, ...)`), None for all points.
    """
    spec = step.spec
    into = _target(ctx, step)
    points = ctx.plan.table(_ref(step.layer, spec.points.table))
    polygons = ctx.plan.table(_ref(step.layer, spec.polygons.table))
    db = ident(points.glue_database)
    out = spec.output_column
    carried = [c.name for c in into.columns if c.name != out]
    keys = [k.name for k in into.partition_keys]
    where = ""
    if values is not None and spec.fan_out:
        marks = ", ".join("?" for _ in range(values))
        where = f"WHERE {ident(spec.fan_out.column)} IN ({marks})"
    geom, value = ident(spec.polygons.geometry), ident(spec.polygons.value)
    x, y = ident(spec.points.x), ident(spec.points.y)
    polygons_cte = f"""polygons AS (
    SELECT {value} AS value, ST_GeomFromText({geom}) AS geom
    FROM {db}.{ident(polygons.name)}
    WHERE {geom} IS NOT NULL AND {geom} <> '' AND {value} IS NOT NULL
)"""
    if spec.points.x not in carried or spec.points.y not in carried:
        group = ", ".join(f"p.{ident(c)}" for c in carried + keys)
        sql = f"""
WITH {polygons_cte},
points AS (
    SELECT * FROM {db}.{ident(points.name)} {where}
)
SELECT {", ".join(f"p.{ident(c)}" for c in carried)},
       list_sort(list_distinct(list(g.value))) AS {ident(out)}
       {"".join(f", p.{ident(k)}" for k in keys)}
FROM points AS p
LEFT JOIN polygons AS g ON ST_Contains(g.geom, ST_Point(p.{x}, p.{y}))
GROUP BY {group}
"""
        return sql, into
    columns = ", ".join(ident(c) for c in carried + keys)
    sql = f"""
WITH {polygons_cte},
ranked AS (
    SELECT dense_rank() OVER (ORDER BY value) AS id, value, geom FROM polygons
),
names AS (
    SELECT list(value ORDER BY id) AS names FROM (SELECT DISTINCT id, value FROM ranked)
),
points AS NOT MATERIALIZED (
    SELECT {"DISTINCT " if distinct else ""}{columns} FROM {db}.{ident(points.name)} {where}
),
hits AS (
    SELECT p.{x} AS hit_x, p.{y} AS hit_y, list_sort(list_distinct(list(g.id))) AS ids
    FROM points AS p
    JOIN ranked AS g ON ST_Contains(g.geom, ST_Point(p.{x}, p.{y}))
    WHERE p.{x} IS NOT NULL AND p.{y} IS NOT NULL
    GROUP BY p.{x}, p.{y}
)
SELECT {", ".join(f"p.{ident(c)}" for c in carried)},
       coalesce(list_select((SELECT names FROM names), coalesce(h.ids, [])), []) AS {ident(out)}
       {"".join(f", p.{ident(k)}" for k in keys)}
FROM points AS p
LEFT JOIN hits AS h ON p.{x} = h.hit_x AND p.{y} = h.hit_y
"""
    return sql, into


def points_repeat(ctx: Context, step: StepPlan, values: list[str] | None) -> bool:
    """Whether some point row repeats whole (carried columns + keys), which the
    per-location plan must collapse. Rows equal => hashes equal, so no repeated hash
    proves no repeated row; only then is the DISTINCT skipped (exact, not sampled).
    No scan when a check of the bake already found one of the compared columns without
    NULL or repeat in the points table's current files (e.g. a same_set on uprn)."""
    from bakery.engine import checks

    spec = step.spec
    into = _target(ctx, step)
    points = ctx.plan.table(_ref(step.layer, spec.points.table))
    carried = [c.name for c in into.columns if c.name != spec.output_column]
    compared = carried + [k.name for k in into.partition_keys]
    if checks.known_unique(ctx, points.ref, compared):
        return False
    columns = ", ".join(ident(c) for c in compared)
    where = ""
    if values and spec.fan_out:
        marks = ", ".join("?" for _ in values)
        where = f"WHERE {ident(spec.fan_out.column)} IN ({marks})"
    sql = f"""
SELECT count(*) FROM (
    SELECT hash({columns}) AS h FROM {ident(points.glue_database)}.{ident(points.name)} {where}
    GROUP BY h HAVING count(*) > 1
)"""
    cur = ctx.con.cursor()
    try:
        return bool(cur.execute(sql, list(values or [])).fetchone()[0])
    finally:
        cur.close()


def geo_join(ctx: Context, step: StepPlan, con: Any, params: list[Any]) -> StepOutcome:
    """One query over every fan-out value at once by default: on one machine DuckDB
    parallelises a single spatial join across cores better than 26 concurrent
    queries, and the result is the union of the per-value queries. Set
    BAKERY_GEO_JOIN=per_value to run one query per value (bounded by max_concurrency),
    as Athena does."""
    into = _target(ctx, step)
    with ctx.lock:
        location = ctx.staging.stage(into, empty=False)
    values = step.over_values
    distinct = points_repeat(ctx, step, values)
    if values and os.environ.get("BAKERY_GEO_JOIN") == "per_value":
        sql, _ = geo_join_sql(ctx, step, values=1, distinct=distinct)
        workers = max(1, min(step.max_concurrency or 1, _cores()))

        def one(value: str) -> int:
            cur = con.cursor()
            try:
                return copy_into(cur, into, ctx.store, location, sql, [value])
            finally:
                cur.close()

        with ThreadPoolExecutor(workers) as pool:
            rows = sum(pool.map(one, values))
        ctx.wrote(into.ref, con)
        return StepOutcome(rows=rows, note=f"{len(values)} queries, {workers} at once")
    sql, _ = geo_join_sql(ctx, step, values=len(values) if values else None, distinct=distinct)
    rows = copy_into(con, into, ctx.store, location, sql, list(values or []))
    ctx.wrote(into.ref, con)
    note = f"one spatial join over {len(values)} partitions" if values else None
    return StepOutcome(rows=rows, note=note)


# ---------------------------------------------------------------- check


def check_message(step: StepPlan, columns: list[str], row: tuple) -> str:
    first = ", ".join(f"{c}={v}" for c, v in zip(columns, row, strict=False))
    return f"check {step.layer}.{step.id} failed: {step.description}: {first}"


def check(ctx: Context, step: StepPlan, con: Any, params: list[Any]) -> StepOutcome:
    from bakery.engine import checks

    if checks.builtin(step):  # same_set, one_distinct, min_rows: per-table aggregates
        failed = checks.run(ctx, step)
        if failed is not None:
            raise StepFailed(check_message(step, list(failed[0]), failed[1]))
        return StepOutcome(note="passed")
    if checks.unique_by_passes(ctx, step):
        return StepOutcome(note="passed: no value repeats (shared aggregates)")
    from bakery.engine import published

    cur = con.cursor()
    try:
        try:
            published.register(ctx, cur, step.sql or "")
        except published.PublishedUnreadable as exc:
            raise StepFailed(f"check {step.qualified_id} failed: {exc}") from None
        cur.execute(to_duckdb(step.sql or ""), params)
        row = cur.fetchone()
        if row is not None:
            columns = [d[0] for d in cur.description]
            if step.message_column and columns == [step.message_column]:
                raise StepFailed(f"check {step.qualified_id} failed: {row[0]}")
            raise StepFailed(check_message(step, columns, row))
    finally:
        cur.close()
    return StepOutcome(note="passed")


# ---------------------------------------------------------------- lambda


def _local_runner(handler: str) -> tuple[Any, Any]:
    """The handler's module and its `run_local(dsn, folder, environment)`, if it has one.

    Handlers that export from EveryElection run locally against a PostgreSQL DSN;
    any other handler runs on AWS only.
    """
    import importlib

    module = importlib.import_module(handler.rsplit(".", 1)[0])
    return module, getattr(module, "run_local", None)


def lambda_step(ctx: Context, step: StepPlan, con: Any, params: list[Any]) -> StepOutcome:
    import tempfile
    from pathlib import Path

    handler = step.spec.handler
    module, run_local = _local_runner(handler)
    if run_local is None:
        raise StepFailed(
            f"step {step.qualified_id}: no local runner for Lambda {handler}; "
            "bake it on AWS or give its module a run_local(dsn, folder, environment)"
        )
    table = _target(ctx, step)
    what = getattr(module, "OUTPUT_NAME", "export")
    environment = dict(step.environment)
    if ctx.ee_dsn:
        with tempfile.TemporaryDirectory(prefix="bakery-lambda-") as tmp:
            folder = Path(tmp)
            rows = run_local(ctx.ee_dsn, folder, environment)
            exported = sorted(p for p in folder.rglob("*") if p.is_file())
            with ctx.lock:
                location = ctx.staging.stage(table, empty=True)
            for path in exported:
                ctx.store.write_bytes(
                    location + path.relative_to(folder).as_posix(), path.read_bytes()
                )
        ctx.wrote(table.ref, con)
        return StepOutcome(rows=rows, files=len(exported), note="exported from EveryElection")
    files = ctx.store.list(ctx.staging.read_location(table))
    if not files:
        raise StepFailed(
            f"step {step.qualified_id}: no {what} at {table.location} and no EveryElection "
            "database configured: set BAKERY_EE_DSN (or --ee-dsn), or seed sample data with "
            "`bakery sample-data` (or bake with --sample)"
        )
    names = ", ".join(f.rsplit("/", 1)[-1] for f in files[:5])
    more = f" and {len(files) - 5} more" if len(files) > 5 else ""
    return StepOutcome(
        files=0,
        note=f"no EveryElection DSN (BAKERY_EE_DSN / --ee-dsn): using the {what} "
        f"already in the store ({names}{more})",
    )


# ---------------------------------------------------------------- export_by_key


def _partitions(ctx: Context, table: TablePlan, location: str) -> list[dict[str, str] | None]:
    if not table.partition_keys:
        return [None]
    first = table.partition_keys[0].name
    seen: set[str] = set()
    for uri in ctx.store.list(location):
        part = uri[len(location) :].split("/", 1)[0]
        if part.startswith(f"{first}="):
            seen.add(part.split("=", 1)[1])
    return [{first: v} for v in sorted(seen)]


def export_by_key(ctx: Context, step: StepPlan, con: Any, params: list[Any]) -> StepOutcome:
    from bakery.lambdas import export_by_key as core

    spec = step.spec
    table = ctx.plan.table(step.reads[0])
    location = ctx.staging.read_location(table)
    # written into a staged folder, published with the layer's tables (engine/publish.py)
    destination = ctx.staging.stage_export(step.qualified_id, step.location or "")
    parts = _partitions(ctx, table, location)
    workers = max(1, min(len(parts), _cores()))

    def one(partition: dict[str, str] | None) -> list[str]:
        return core.export_partition(
            ctx.store,
            table_location=location,
            partition=partition,
            destination=destination,
            key=spec.key,
            columns=list(spec.columns),
            sort_by=list(spec.sort_by),
            unique_by=spec.unique_by,
            empty_unless_any=spec.empty_unless_any,
        )

    try:
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(one, parts))
    except core.ExportError as exc:
        raise StepFailed(f"step {step.qualified_id} failed: {exc}") from None
    keys = [k for r in results for k in r]
    deleted = ctx.staging.carry_over(
        step.qualified_id,
        {f"{k}{core.SUFFIX}" for k in keys},
        lambda name: bool(spec.delete_stale) and core.is_key_file(name),
    )
    note = f"{len(keys)} files in {step.location}"
    if deleted:
        note += f", {deleted} stale deleted"
    return StepOutcome(files=len(keys), note=note, extra={"deleted": deleted, "keys": len(keys)})


# ---------------------------------------------------------------- refresh_partitions


def refresh_partitions(ctx: Context, step: StepPlan, con: Any, params: list[Any]) -> StepOutcome:
    ctx.refresh_views(list(step.writes))
    return StepOutcome(note="local views read the partition folders directly")


# ---------------------------------------------------------------- for_each


def for_each(ctx: Context, step: StepPlan, con: Any, params: list[Any]) -> StepOutcome:
    if step.over_values is not None:
        items = [dict(zip(step.over_params, [v], strict=False)) for v in step.over_values]
    else:
        cur = con.cursor()
        try:
            rows = cur.execute(to_duckdb(step.over_sql or "")).fetchall()
        finally:
            cur.close()
        items = [dict(zip(step.over_params, row, strict=False)) for row in rows]
    for child in step.children:  # stage before the threads start
        if child.kind == "athena_query":
            ctx.staging.stage(_target(ctx, child), empty=False)
    ctx.refresh_views()
    workers = max(1, min(step.max_concurrency or 1, len(items) or 1))

    def one(item: dict[str, Any]) -> int:
        cur = con.cursor()
        total = 0
        try:
            for child in step.children:
                values = [item[p] for p in child.params]
                outcome = RUNNERS[child.kind](ctx, child, cur, values)
                total += outcome.rows or 0
                _pause_child(child)
        finally:
            cur.close()
        return total

    with ThreadPoolExecutor(workers) as pool:
        rows = sum(pool.map(one, items))
    return StepOutcome(rows=rows, note=f"{len(items)} items, at most {workers} at once")


def _pause_child(step: StepPlan) -> None:
    """The runner's test hook (BAKERY_TEST_PAUSE_AT) for a step inside a for_each."""
    from bakery.engine.context import pause as _pause

    _pause(step)


# The local engine's table: one runner per kind (tests/spec/test_kinds.py checks it
# covers every registered kind).
RUNNERS = {
    "purge_prefix": purge_prefix,
    "athena_query": athena_query,
    "geo_join": geo_join,
    "check": check,
    "lambda": lambda_step,
    "export_by_key": export_by_key,
    "refresh_partitions": refresh_partitions,
    "for_each": for_each,
}
