"""The Trino back-end of a bake: the steps whose SQL Athena runs (athena_query, geo_join,
check, publish guards, for_each's item query, MSCK REPAIR) run that same rendered Athena
SQL on a local Trino, untranspiled; every other step kind (purge_prefix, lambda,
export_by_key) and staging/publishing are the DuckDB engine's engine-independent ones.

An UNLOAD (athena_query, geo_join) is an INSERT into the target's Hive table registered
at its staged location, each column cast to the declared type, as the DuckDB engine's
COPY does. `?` parameters are bound by Trino's prepared statements (PREPARE + EXECUTE
... USING, bakery.trino.server.Server.connect), as Athena's ExecutionParameters are.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from bakery.engine import steps as duck_steps
from bakery.engine.steps import StepFailed, StepOutcome, check_message
from bakery.plan import StepPlan, TablePlan
from bakery.store import LocalStore
from bakery.trino.tables import CATALOG, LIVE, Tables, execute, ident, trino_type

if TYPE_CHECKING:
    from bakery.engine.context import Context
    from bakery.trino.server import Server

Runner = Callable[["Context", StepPlan, Any, list[Any]], StepOutcome]


class Backend:
    """The runners of one bake on one Trino server."""

    def __init__(self, ctx: Context, server: Server):
        self.ctx = ctx
        assert isinstance(ctx.store, LocalStore)  # session() refuses S3 stores
        self.server = server
        self.tables = Tables(server.connect(), ctx.store)
        self.local = threading.local()  # a connection per worker thread
        self.registered = False  # inside a for_each body: its tables are registered

    def _con(self) -> Any:
        if threading.current_thread() is threading.main_thread():
            return self.tables.con
        if getattr(self.local, "con", None) is None:
            self.local.con = self.server.connect()
        return self.local.con

    def _parallel(self, work: Callable[[Any], int], items: list[Any], at_most: int | None) -> int:
        """`work` over `items`, up to `at_most` at once (the step's max_concurrency, as on
        Athena; at most 4 here), each worker on its own Trino connection."""
        from concurrent.futures import ThreadPoolExecutor

        workers = max(1, min(at_most or 1, 4, len(items) or 1))
        if workers == 1:
            return sum(work(item) for item in items)
        with ThreadPoolExecutor(workers) as pool:
            return sum(pool.map(work, items))

    def _register_reads(self, step: StepPlan, sql: str) -> None:
        if self.registered:
            return
        refs = list(dict.fromkeys([*step.reads, *step.writes]))
        for ref in refs:
            table = self.ctx.plan.table(ref)
            self.tables.register(table, self.ctx.staging.read_location(table))
            if f"{LIVE}." in sql:  # a publish guard reads the published table too
                self.tables.register(table, table.location, LIVE)

    def _unload(self, table: TablePlan, sql: str, params: list[Any]) -> int:
        select = ", ".join(
            f"CAST(q.{ident(c.name)} AS {trino_type(c.type)})" for c in table.all_columns
        )
        name = f"{CATALOG}.{ident(table.glue_database)}.{ident(table.name)}"
        insert = f"INSERT INTO {name} SELECT {select} FROM ({sql}) AS q"
        rows = self.tables.run(insert, params, self._con())
        return int(rows[0][0]) if rows else 0

    def athena_query(
        self, ctx: Context, step: StepPlan, con: Any, params: list[Any]
    ) -> StepOutcome:
        table = ctx.plan.table(step.writes[0])
        with ctx.lock:
            ctx.staging.stage(table, empty=False)
        self._register_reads(step, step.sql or "")
        rows = self._unload(table, step.sql or "", params)
        if not self.registered:  # a for_each refreshes its children's tables at its end
            ctx.wrote(table.ref, con)
        return StepOutcome(rows=rows)

    def geo_join(self, ctx: Context, step: StepPlan, con: Any, params: list[Any]) -> StepOutcome:
        """The geo-join's Athena template, one query per fan-out value as on Athena."""
        table = ctx.plan.table(step.writes[0])
        with ctx.lock:
            ctx.staging.stage(table, empty=False)
        self._register_reads(step, step.sql or "")
        values = step.over_values
        batches = [[v] for v in values] if values and step.params else [list(params)]
        sql = step.sql or ""
        rows = self._parallel(lambda b: self._unload(table, sql, b), batches, step.max_concurrency)
        ctx.wrote(table.ref, con)
        note = f"{len(batches)} queries on Trino" if len(batches) > 1 else None
        return StepOutcome(rows=rows, note=note)

    def check(self, ctx: Context, step: StepPlan, con: Any, params: list[Any]) -> StepOutcome:
        sql = step.sql or ""
        self._register_reads(step, sql)
        cur = self._con().cursor()
        try:
            row = execute(cur, sql, params, many=False)
            if row is not None:
                columns = [d[0] for d in cur.description]
                if step.message_column and columns == [step.message_column]:
                    raise StepFailed(f"check {step.qualified_id} failed: {row[0]}")
                raise StepFailed(check_message(step, columns, tuple(row)))
        finally:
            cur.close()
        return StepOutcome(note="passed on Trino")

    def refresh_partitions(
        self, ctx: Context, step: StepPlan, con: Any, params: list[Any]
    ) -> StepOutcome:
        """MSCK REPAIR TABLE: the partitions of the table's folders, on both engines."""
        self._register_reads(step, "")
        duck_steps.refresh_partitions(ctx, step, con, params)
        return StepOutcome(note="partitions synced (system.sync_partition_metadata)")

    def for_each(self, ctx: Context, step: StepPlan, con: Any, params: list[Any]) -> StepOutcome:
        """Items from over_sql on Trino; the children one item after another (the result
        is the union of the items' writes whatever the order)."""
        if step.over_values is not None:
            items = [dict(zip(step.over_params, [v], strict=False)) for v in step.over_values]
        else:
            self._register_reads(step, step.over_sql or "")
            for ref in {r for c in step.children for r in c.reads}:
                table = ctx.plan.table(ref)
                self.tables.register(table, ctx.staging.read_location(table))
            rows = self.tables.run(step.over_sql or "")
            items = [dict(zip(step.over_params, row, strict=False)) for row in rows]
        runners = self.runners()
        for child in step.children:  # stage and register before the threads start
            if child.kind == "athena_query":
                ctx.staging.stage(ctx.plan.table(child.writes[0]), empty=False)
            self._register_reads(child, child.sql or "")

        def one(item: dict[str, Any]) -> int:
            total = 0
            for child in step.children:
                outcome = runners[child.kind](ctx, child, con, [item[p] for p in child.params])
                total += outcome.rows or 0
            return total

        self.registered = True
        try:
            total = self._parallel(one, items, step.max_concurrency)
        finally:
            self.registered = False
        for ref in {r for c in step.children for r in c.writes}:
            ctx.wrote(ref, con)
        workers = max(1, min(step.max_concurrency or 1, 4, len(items) or 1))
        return StepOutcome(rows=total, note=f"{len(items)} items on Trino, {workers} at once")

    def runners(self) -> dict[str, Runner]:
        return {
            **duck_steps.RUNNERS,
            "athena_query": self.athena_query,
            "geo_join": self.geo_join,
            "check": self.check,
            "refresh_partitions": self.refresh_partitions,
            "for_each": self.for_each,
        }


@contextlib.contextmanager
def session(ctx: Context, server: Server | None = None) -> Iterator[dict[str, Runner]]:
    """The step runners of a bake on Trino: on `server`, else on one started here and
    stopped when the bake ends (also on Ctrl-C / SIGTERM)."""
    from bakery.trino import server as trino_server

    if not ctx.store.is_local:
        raise StepFailed(
            "--engine trino bakes a local store folder only (its Hive catalog reads local "
            "files); give --store a folder"
        )
    with contextlib.ExitStack() as stack:
        if server is None:
            server = stack.enter_context(trino_server.running())
        yield Backend(ctx, server).runners()
