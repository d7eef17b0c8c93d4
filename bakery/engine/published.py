"""Published tables for checks that compare a new table with what readers see now.

A query names a table through the catalog (`awsdatacatalog.<db>.<table>`, see
`bakery.plan.LIVE_CATALOG`) to read its published version: on Athena that is the
live Glue table (the staging rewrite skips catalog-qualified names); here it is a
view in an attached in-memory database of that name over the table's live files,
while `<db>.<table>` keeps reading the staged copy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp

from bakery.engine.duck import ident, quote
from bakery.engine.tables import empty_sql, source_sql
from bakery.plan import LIVE_CATALOG

if TYPE_CHECKING:
    from bakery.engine.runner import Context


def live_names(sql: str) -> list[tuple[str, str]]:
    """(database, table) of every table the Athena query reads through the catalog."""
    if LIVE_CATALOG not in sql.lower():
        return []
    tree = sqlglot.parse_one(sql, read="athena")
    out: list[tuple[str, str]] = []
    for node in tree.find_all(exp.Table):
        if node.catalog.lower() == LIVE_CATALOG and (node.db, node.name) not in out:
            out.append((node.db, node.name))
    return out


def register(ctx: Context, con: Any, sql: str) -> list[str]:
    """Views of the published files of every table `sql` reads through the catalog.

    A published table whose files cannot be read (a damaged Parquet file) is read as
    empty, as before its first publish: comparing with it is impossible, and refusing
    would keep the bake that repairs it from ever publishing. Returns a note per such
    table."""
    names = live_names(sql)
    if not names:
        return []
    by_name = {(t.glue_database, t.name): t for t in ctx.plan.tables.values()}
    notes: list[str] = []
    with ctx.lock:
        con.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {ident(LIVE_CATALOG)}")
        for db, name in names:
            table = by_name[(db, name)]
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(LIVE_CATALOG)}.{ident(db)}")
            view = f"{ident(LIVE_CATALOG)}.{ident(db)}.{ident(name)}"
            bad = _unreadable_file(ctx, con, table)
            body = source_sql(table, ctx.store, table.location) if bad is None else empty_sql(table)
            if bad is not None:
                notes.append(
                    f"published {table.ref} is damaged ({bad}): compared as empty; "
                    "this bake rewrites it"
                )
            con.execute(f"CREATE OR REPLACE VIEW {view} AS {body}")
    return notes


def _unreadable_file(ctx: Context, con: Any, table: Any) -> str | None:
    """The first published file of a Parquet table whose footer cannot be read."""
    if table.format != "parquet":
        return None
    for uri in ctx.store.list(table.location):
        try:
            con.execute(
                f"SELECT 1 FROM parquet_metadata({quote(ctx.store.duck_path(uri))}) LIMIT 1"
            ).fetchall()
        except Exception:  # noqa: BLE001 - duckdb raises several kinds
            return uri
    return None
