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

from bakery.engine import damaged
from bakery.engine.duck import ident
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

    A damaged published table is read as empty (the rule: bakery.engine.damaged).
    Returns a note per such table."""
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
            note = damaged.as_empty_note(con, ctx.store, table)
            body = (
                source_sql(table, ctx.store, table.location) if note is None else empty_sql(table)
            )
            if note is not None:
                notes.append(note)
            con.execute(f"CREATE OR REPLACE VIEW {view} AS {body}")
    return notes
