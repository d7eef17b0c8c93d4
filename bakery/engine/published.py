"""Published tables, as the steps that depend on them see them (the rules, shared with
the AWS back-end: bakery.planning.published).

A query names a table through the catalog (`awsdatacatalog.<db>.<table>`, see
`bakery.plan.LIVE_CATALOG`) to read its published version: on Athena that is the
live Glue table, whose partitions the check loads first (the staging rewrite skips
catalog-qualified names); here it is a view in an attached in-memory database of that
name over the table's live files, while `<db>.<table>` keeps reading the staged copy.
Live files are read whoever wrote them (a bake, or another system at the same prefix),
as Athena reads them once their partitions are loaded. A published table whose files
cannot be read stops the check, as Athena's query would (bakery.engine.damaged).

`unpublished` is the probe of an upstream table before its first reader.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bakery.engine import damaged
from bakery.engine.damaged import is_interrupt
from bakery.engine.duck import ident
from bakery.engine.tables import source_sql
from bakery.engine.transpile import to_duckdb
from bakery.errors import BakeryError
from bakery.plan import LIVE_CATALOG, StepPlan, TablePlan
from bakery.planning.published import live_names, probe_sql

if TYPE_CHECKING:
    from bakery.engine.context import Context

__all__ = ["live_names", "register", "unpublished"]


class PublishedUnreadable(BakeryError):
    """A published table a check compares with cannot be read; the message says why."""


def register(ctx: Context, con: Any, sql: str) -> None:
    """Views of the published files of every table `sql` reads through the catalog.

    Raises PublishedUnreadable when a table's files cannot be read (a damaged file, or
    files outside the table's partition layout): comparing with what could be read
    would let the check pass on less than what readers have."""
    names = live_names(sql)
    if not names:
        return
    by_name = {(t.glue_database, t.name): t for t in ctx.plan.tables.values()}
    with ctx.lock:
        con.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {ident(LIVE_CATALOG)}")
        for db, name in names:
            table = by_name[(db, name)]
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(LIVE_CATALOG)}.{ident(db)}")
            view = f"{ident(LIVE_CATALOG)}.{ident(db)}.{ident(name)}"
            problem = damaged.unreadable_published(con, ctx.store, table)
            if problem is None:
                try:
                    con.execute(
                        f"CREATE OR REPLACE VIEW {view} AS "
                        + source_sql(table, ctx.store, table.location)
                    )
                    con.execute(f"SELECT 1 FROM {view} LIMIT 0").fetchall()
                except Exception as exc:  # noqa: BLE001 - duckdb raises several kinds
                    if is_interrupt(exc):
                        raise KeyboardInterrupt from None
                    problem = damaged.layout_message(table, exc)
            if problem is not None:
                raise PublishedUnreadable(problem)


def unpublished(ctx: Context, table: TablePlan) -> bool:
    """True when upstream `table` reads no row as this bake sees it (its probe)."""
    ctx.refresh_views()
    cur = ctx.con.cursor()
    try:
        return cur.execute(to_duckdb(probe_sql(table))).fetchone() is None
    finally:
        cur.close()


def probe_steps(ctx: Context, step: StepPlan) -> list[tuple[StepPlan, TablePlan]]:
    """(reading step, table) of the upstream tables to probe before top-level `step`."""
    from bakery.planning.published import first_reads

    memo: dict[str, dict] = ctx.__dict__.setdefault("first_reads", {})
    if step.layer not in memo:
        memo[step.layer] = first_reads(ctx.plan, ctx.plan.layer(step.layer))
    return memo[step.layer].get(step.id, [])
