"""The plan's Glue tables as Hive tables of the local Trino, with Athena's SerDe meaning.

Catalog `hive` holds each table at the location this bake reads it from (staged when
written, published otherwise), under its Glue database name, so the rendered Athena SQL
resolves unchanged; catalog `awsdatacatalog` holds the published tables, as the
publish guards name them. CSV tables use Trino's CSV format, the OpenCSVSerde of the
Glue definitions (bakery/constructs/tables.py: separatorChar, quoteChar, escapeChar `\\`),
which reads every column as VARCHAR (https://trino.io/docs/current/connector/hive.html,
"CSV - using org.apache.hadoop.hive.serde2.OpenCSVSerde"). Partitions are registered as
MSCK REPAIR does, from the key=value folders: `system.sync_partition_metadata`.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

from bakery.plan import TablePlan
from bakery.store import LocalStore
from bakery.trino.server import location as local_location

LIVE = "awsdatacatalog"
CATALOG = "hive"

_SIMPLE = {
    "string": "varchar",
    "boolean": "boolean",
    "tinyint": "tinyint",
    "smallint": "smallint",
    "int": "integer",
    "integer": "integer",
    "bigint": "bigint",
    "float": "real",
    "double": "double",
    "date": "date",
    "timestamp": "timestamp(3)",
    "binary": "varbinary",
}


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def trino_type(hive: str) -> str:
    """Glue/Hive type -> Trino type (array<string> -> array(varchar), struct -> row)."""
    from bakery.engine.duck import _split_top

    t = hive.strip().lower()
    if t in _SIMPLE:
        return _SIMPLE[t]
    if re.fullmatch(r"(varchar|char)\(\d+\)|decimal\(\d+(,\s*\d+)?\)", t):
        return t
    if t.startswith("array<") and t.endswith(">"):
        return f"array({trino_type(t[6:-1])})"
    if t.startswith("map<") and t.endswith(">"):
        k, v = _split_top(t[4:-1])
        return f"map({trino_type(k)}, {trino_type(v)})"
    if t.startswith("struct<") and t.endswith(">"):
        fields = []
        for part in _split_top(t[7:-1]):
            name, typ = part.split(":", 1)
            fields.append(f"{ident(name.strip())} {trino_type(typ)}")
        return f"row({', '.join(fields)})"
    raise ValueError(f"no Trino type for Glue type {hive!r}")


# OpenCSVSerDe on Athena "recognizes BOOLEAN, BIGINT, INT, and DOUBLE data types" (and
# leaves others as text): https://docs.aws.amazon.com/athena/latest/ug/csv-serde.html.
# Trino's CSV format reads VARCHAR only, so such columns are cast by a view over it.
OPENCSV_TYPES = {"boolean", "bigint", "int", "integer", "double"}
RAW_SUFFIX = "__opencsv"


def view_sql(catalog: str, table: TablePlan) -> str | None:
    """A view with Athena's OpenCSVSerDe types over the all-VARCHAR CSV table, or None
    when every column stays text."""
    typed = [c for c in table.all_columns if c.type.strip().lower() in OPENCSV_TYPES]
    if table.format != "csv" or not typed:
        return None
    columns = ", ".join(
        f"CAST({ident(c.name)} AS {trino_type(c.type)}) AS {ident(c.name)}"
        if c in typed
        else ident(c.name)
        for c in table.all_columns
    )
    db = f"{catalog}.{ident(table.glue_database)}"
    return (
        f"CREATE OR REPLACE VIEW {db}.{ident(table.name)} AS SELECT {columns} "
        f"FROM {db}.{ident(table.name + RAW_SUFFIX)}"
    )


def create_sql(catalog: str, table: TablePlan, where: str) -> str:
    csv = table.format == "csv"
    columns = ", ".join(
        f"{ident(c.name)} {'varchar' if csv else trino_type(c.type)}" for c in table.all_columns
    )
    props = [f"external_location = {quote(where)}"]
    if csv:
        spec = table.csv
        props += [
            "format = 'CSV'",
            f"csv_separator = {quote(spec.delimiter if spec else ',')}",
            f"csv_quote = {quote(spec.quote if spec else chr(34))}",
            "csv_escape = '\\'",
        ]
        if spec and spec.header:
            props.append("skip_header_line_count = 1")
    else:
        props.append("format = 'PARQUET'")
    if table.partition_keys:
        keys = ", ".join(quote(k.name) for k in table.partition_keys)
        props.append(f"partitioned_by = ARRAY[{keys}]")
    own = table.name + (RAW_SUFFIX if view_sql(catalog, table) else "")
    name = f"{catalog}.{ident(table.glue_database)}.{ident(own)}"
    return f"CREATE TABLE {name} ({columns}) WITH ({', '.join(props)})"


def athena_params(params: list[Any] | None) -> list[Any] | None:
    """Execution parameters as Athena gets them: the state machines pass each value as a
    string literal (bakery.compile.athena_sql.sql_literal), so an integer of a for_each
    row arrives as varchar '7', never as an integer (NULL stays NULL)."""
    if not params:
        return None
    return [None if v is None else str(v) for v in params]


TRACE_ENV = "BAKERY_TRINO_TRACE"


def execute(cur: Any, sql: str, params: list[Any] | None = None, many: bool = True) -> Any:
    """The statement's rows (all, or the first when not `many`), its kind and wall time
    appended to the file $BAKERY_TRINO_TRACE names (where a Trino bake's time goes)."""
    started = time.monotonic()
    try:
        cur.execute(sql, athena_params(params))
        return list(cur.fetchall()) if many else cur.fetchone()
    finally:
        trace = os.environ.get(TRACE_ENV)
        if trace:
            words = sql.split()
            with open(trace, "a") as out:
                wall = time.monotonic() - started
                out.write(f"{wall:.3f}\t{' '.join(words[:2]).upper()}\t{' '.join(words)[:100]}\n")


class Tables:
    """Registers tables on one Trino connection, again only when a location changed."""

    def __init__(self, con: Any, store: LocalStore):
        self.con = con
        self.store = store
        self.at: dict[tuple[str, str], str] = {}
        self.schemas: set[tuple[str, str]] = set()

    def run(self, sql: str, params: list[Any] | None = None, con: Any = None) -> list[Any]:
        cur = (con or self.con).cursor()
        try:
            return list(execute(cur, sql, params))
        finally:
            cur.close()

    def register(self, table: TablePlan, location: str, catalog: str = CATALOG) -> None:
        folder = self.store.path(location)
        folder.mkdir(parents=True, exist_ok=True)  # Trino wants an existing directory
        where = local_location(folder)
        key = (catalog, table.ref)
        view = view_sql(catalog, table)
        own = table.name + (RAW_SUFFIX if view else "")
        name = f"{catalog}.{ident(table.glue_database)}.{ident(own)}"
        if self.at.get(key) != where:
            if (catalog, table.glue_database) not in self.schemas:
                self.run(f"CREATE SCHEMA IF NOT EXISTS {catalog}.{ident(table.glue_database)}")
                self.schemas.add((catalog, table.glue_database))
            self.run(f"DROP TABLE IF EXISTS {name}")  # external: the files stay
            self.run(create_sql(catalog, table, where))
            if view:
                self.run(view)
            self.at[key] = where
        if table.partition_keys:
            # literals: Trino binds parameters in CALL only from release 481
            self.run(
                f"CALL {catalog}.system.sync_partition_metadata("
                f"{quote(table.glue_database)}, {quote(table.name)}, 'FULL')"
            )
