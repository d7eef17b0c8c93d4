"""A damaged published table: one rule for every reader in a bake.

A table is damaged when DuckDB cannot read its files, e.g. one truncated Parquet file
(no footer). The bake never stops at the damage itself: it names the first file that
cannot be read and
- a step that reads the table through its view fails, with the file named and what to
  do (`failing_view`): layers that do not read it bake as usual;
- a check that compares a new table with its published version (a publish guard, which
  reads `awsdatacatalog.<db>.<table>`) fails too, naming the file
  (`unreadable_published`): compared with what could be read, it would pass on less
  than readers have. Athena fails such a query the same way (HIVE_CURSOR_ERROR,
  "the file is either corrupted or empty",
  https://docs.aws.amazon.com/athena/latest/ug/troubleshooting-athena.html#troubleshooting-athena-data-file-issues).
  The fix is the file's: replace it with a good copy, or delete it.
The bake that rewrites the table repairs it.
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


def unreadable_published(con: Any, store: Store, table: TablePlan) -> str | None:
    """Why the published table cannot be compared with (a damaged file, named), or None
    when every file reads."""
    found = first_unreadable(con, store, table, table.location)
    if found is None:
        return None
    bad, exc = found
    return (
        f"the published {table.ref} cannot be read: file {bad} is damaged ({one_line(exc)}); "
        "replace it with a good copy or delete it, then run again; nothing was published"
    )


def layout_message(table: TablePlan, exc: BaseException) -> str:
    """Why the published files cannot be read as the table although each file reads:
    they do not follow its layout (e.g. a file outside its key=value/ folders)."""
    keys = "/".join(f"{k.name}=<value>" for k in table.partition_keys)
    layout = f" (files under {keys}/)" if keys else ""
    return (
        f"the published {table.ref} cannot be read: its files at {table.location} do not "
        f"read as the table{layout}: {one_line(exc)}; move the files that are not this "
        "table's elsewhere, then run again; nothing was published"
    )
