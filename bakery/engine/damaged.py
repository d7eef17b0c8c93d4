"""A damaged published table: one rule for every reader in a bake.

A table is damaged when DuckDB cannot read its files, e.g. one truncated Parquet file
(no footer). The bake never stops at the damage itself: it names the first file that
cannot be read and
- a step that reads the table through its view fails, with the file named and what to
  do (`failing_view`): layers that do not read it bake as usual;
- a check that compares a new table with its published version (a publish guard, which
  reads `awsdatacatalog.<db>.<table>`) reads the damaged published table as empty, as
  before its first publish: comparing with it is impossible, and refusing would keep
  the bake that rewrites it from ever publishing (`as_empty_note`).
In both cases the bake that rewrites the table repairs it.
"""

from __future__ import annotations

from typing import Any

from bakery.engine import duck
from bakery.plan import TablePlan
from bakery.store import Store


def is_interrupt(exc: BaseException) -> bool:
    """DuckDB turns a Ctrl-C during a query into its own error."""
    text = str(exc)
    return (
        type(exc).__name__ == "InterruptException"
        or text.startswith("INTERRUPT Error")
        or "Query interrupted" in text
    )


def first_unreadable(
    con: Any, store: Store, table: TablePlan, location: str
) -> tuple[str, BaseException] | None:
    """The first file of the table at `location` whose Parquet footer DuckDB cannot
    read, with the error; None when every file reads (or the table is not Parquet).
    A Ctrl-C while probing is raised as KeyboardInterrupt, never taken for damage."""
    if table.format != "parquet":
        return None
    for uri in store.list(location):
        try:
            con.execute(
                f"SELECT 1 FROM parquet_metadata({duck.quote(store.duck_path(uri))}) LIMIT 1"
            ).fetchall()
        except Exception as exc:  # noqa: BLE001 - duckdb raises several kinds
            if is_interrupt(exc):
                raise KeyboardInterrupt from None
            return uri, exc
    return None


def one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[0] if len(lines) == 1 else " ".join(ln.strip() for ln in lines[:3])


def failing_message(
    con: Any, table: TablePlan, store: Store, location: str, exc: BaseException
) -> str:
    """Why a step reading the table fails: which file, and what to do about it.
    `exc` is DuckDB's error from registering the view (kept when no file is named)."""
    found = first_unreadable(con, store, table, location)
    if found is not None:
        bad, exc = found
        what = f"file {bad} is damaged"
    else:
        what = f"its files at {location} cannot be read"
    if table.written_by:
        todo = f"bake layer {table.layer} to rewrite it"
    else:
        todo = "replace the file with a good copy"
    return f"table {table.ref}: {what} ({one_line(exc)}); {todo}"


def failing_view(table: TablePlan, message: str) -> str:
    """A view of the table's shape that raises `message` whenever rows are read."""
    err = f"error({duck.quote(message)})"
    cols = ", ".join(
        f"CAST({err} AS {duck.duck_type(c.type)}) AS {duck.ident(c.name)}"
        for c in table.all_columns
    )
    name = f"{duck.ident(table.glue_database)}.{duck.ident(table.name)}"
    return f"CREATE OR REPLACE VIEW {name} AS SELECT {cols} FROM range(1) WHERE {err} IS NULL"


def as_empty_note(con: Any, store: Store, table: TablePlan) -> str | None:
    """For a comparison with the published table: a note when it is damaged (the
    caller then reads it as empty), None when it reads."""
    found = first_unreadable(con, store, table, table.location)
    if found is None:
        return None
    return (
        f"published {table.ref} is damaged ({found[0]}): compared as empty; this bake rewrites it"
    )
