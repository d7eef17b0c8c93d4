"""Glue tables as DuckDB views, and COPY of a query's result into a table location.

Each table becomes a view `<glue_database>.<table>` over the files at its location
(or at its staged location while a bake writes it), so the rendered SQL's
`dc_data_baker.table` names resolve. CSV tables are read with their declared header,
delimiter, quote and column types (no header: columns by position); Parquet tables
with hive partitions. A location with no files is an empty view of the right shape.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from bakery.engine.duck import duck_type, ident, quote
from bakery.plan import TablePlan
from bakery.store import Store


def _list_sql(paths: list[str]) -> str:
    return "[" + ", ".join(quote(p) for p in paths) + "]"


def empty_sql(table: TablePlan) -> str:
    """A SELECT of no rows with the table's declared columns and types."""
    return (
        "SELECT "
        + ", ".join(
            f"CAST(NULL AS {duck_type(c.type)}) AS {ident(c.name)}" for c in table.all_columns
        )
        + " WHERE false"
    )


def source_sql(table: TablePlan, store: Store, location: str) -> str:
    """A SELECT over the files at `location` with the table's declared columns and types."""
    files = [store.duck_path(f) for f in store.list(location)]
    cols = table.all_columns
    if not files:
        return empty_sql(table)
    if table.format == "csv":
        csv = table.csv
        assert csv is not None
        spec = ", ".join(f"{quote(c.name)}: {quote(duck_type(c.type))}" for c in table.columns)
        reader = (
            f"read_csv({_list_sql(files)}, header={'true' if csv.header else 'false'}, "
            f"delim={quote(csv.delimiter)}, quote={quote(csv.quote)}, escape={quote(csv.quote)}, "
            f"columns={{{spec}}}, auto_detect=false, nullstr='\\N')"
        )
        select = ", ".join(ident(c.name) for c in table.columns)
        return f"SELECT {select} FROM {reader}"
    keys = table.partition_keys
    hive = ""
    if keys:
        types = ", ".join(f"{quote(k.name)}: {quote(duck_type(k.type))}" for k in keys)
        hive = f", hive_partitioning=true, hive_types={{{types}}}"
    else:
        hive = ", hive_partitioning=false"
    reader = f"read_parquet({_list_sql(files)}, union_by_name=true{hive})"
    select = ", ".join(
        f"CAST({ident(c.name)} AS {duck_type(c.type)}) AS {ident(c.name)}" for c in cols
    )
    return f"SELECT {select} FROM {reader}"


def register(con: Any, table: TablePlan, store: Store, location: str) -> None:
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(table.glue_database)}")
    con.execute(
        f"CREATE OR REPLACE VIEW {ident(table.glue_database)}.{ident(table.name)} AS "
        + source_sql(table, store, location)
    )


def copy_into(
    con: Any,
    table: TablePlan,
    store: Store,
    location: str,
    query: str,
    params: list[Any] | None = None,
) -> int:
    """Write the result of `query` (DuckDB SQL) into `location` in the table's format.

    Columns are cast to the table's declared types, in its order; a partitioned table
    is written with PARTITION_BY its keys (key=value/ folders, keys not in the files).
    Returns the number of rows written. File names are unique, so several steps
    (a for_each) can add to one table.
    """
    cols = table.all_columns
    select = ", ".join(
        f"CAST(q.{ident(c.name)} AS {duck_type(c.type)}) AS {ident(c.name)}" for c in cols
    )
    inner = f"SELECT {select} FROM ({query}) AS q"
    final = store.duck_path(location).rstrip("/")
    name = f"part-{uuid.uuid4().hex}"
    # Locally, write into a hidden folder and rename the finished files into place, so
    # a concurrent reader (another for_each iteration refreshing this table's view)
    # never lists a half-written file. S3 objects appear only once complete.
    target = f"{final}/.tmp-{name}" if store.is_local else final
    if table.format == "csv":
        csv = table.csv
        assert csv is not None
        opts = (
            f"FORMAT csv, HEADER {'true' if csv.header else 'false'}, "
            f"DELIMITER {quote(csv.delimiter)}, QUOTE {quote(csv.quote)}, "
            # NULL as \N, as the reader above (and Athena's LazySimpleSerDe) expects
            "NULLSTR '\\N'"
        )
        ext = ".csv"
    else:
        codec = "uncompressed" if table.compression == "none" else table.compression
        opts = f"FORMAT parquet, COMPRESSION {codec}"
        ext = ".parquet"
    if table.partition_keys:
        keys = ", ".join(ident(k.name) for k in table.partition_keys)
        sql = (
            f"COPY ({inner}) TO {quote(target)} ({opts}, PARTITION_BY ({keys}), "
            f"FILENAME_PATTERN {quote(name + '-{i}')}, FILE_EXTENSION {quote(ext[1:])}, "
            "OVERWRITE_OR_IGNORE true)"
        )
    else:
        if store.is_local:
            Path(target).mkdir(parents=True, exist_ok=True)
        sql = f"COPY ({inner}) TO {quote(target + '/' + name + ext)} ({opts})"
    try:
        result = con.execute(sql, params or []).fetchone()
        if store.is_local:
            _move_files(Path(target), Path(final))
    finally:
        if store.is_local:
            shutil.rmtree(target, ignore_errors=True)
    return int(result[0]) if result else 0


def _move_files(src: Path, dst: Path) -> None:
    """Rename every file under src to the same relative path under dst."""
    for dirpath, _, names in os.walk(src):
        folder = dst / Path(dirpath).relative_to(src)
        folder.mkdir(parents=True, exist_ok=True)
        for file in names:
            os.replace(Path(dirpath) / file, folder / file)
