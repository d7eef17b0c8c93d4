"""Athena SQL text the state machines run: UNLOAD with its options, a row query wrapped
for a Distributed Map, a check's first row as one text, SQL literals."""

from __future__ import annotations

from bakery.compile.errors import CompileError
from bakery.planning.model import TablePlan


def sql_literal(value: str) -> str:
    """A string as an Athena SQL literal, for ExecutionParameters (which take SQL literals)."""
    return "'" + value.replace("'", "''") + "'"


def unload_options(table: TablePlan, partitioned_by: list[str]) -> str:
    if table.format != "parquet":
        # UNLOAD's text output (TEXTFILE: no quoting, \N for NULL) is not what a csv table's
        # OpenCSVSerde reads back; `bakery validate` refuses such a layer first.
        raise CompileError(
            f"table {table.ref} is {table.format}: a query writes parquet tables only"
        )
    opts = ["format = 'PARQUET'"]
    if table.compression != "none":
        opts.append(f"compression = '{table.compression.upper()}'")
    if partitioned_by:
        opts.append(
            "partitioned_by = ARRAY[" + ", ".join(sql_literal(k) for k in partitioned_by) + "]"
        )
    return ", ".join(opts)


def unload(sql: str, table: TablePlan, location: str, partitioned_by: list[str]) -> str:
    options = unload_options(table, partitioned_by)
    return f"UNLOAD (\n{sql}\n)\nTO {sql_literal(location)}\nWITH ({options})"


def rows_query(sql: str, names: list[str]) -> str:
    """`sql` wrapped so that each of its columns (by position, named `names`) becomes two
    never-NULL base64 texts (of UTF-8): `<name>_sql`, of an Athena SQL literal of the value
    (NULL for NULL), and `<name>_json`, of the value in a one-element JSON array ([null]
    for NULL). The array keeps a text value a JSON string in Athena and in DuckDB alike (a
    bare CAST(text AS JSON) parses the text in DuckDB).

    Base64, because the Distributed Map's CSV ItemReader that reads these rows takes a
    backslash as an escape character and silently drops one before any character but a
    backslash, a quote or the delimiter
    (https://docs.aws.amazon.com/step-functions/latest/dg/example-csv-parse-dist-map.html):
    a value holding `\\n`, `\\"`, `\\\\` or `\\u00e9` (JSON text, a path, a regex) would
    reach the child changed. The base64 alphabet has no backslash, quote or comma; the
    Map's ItemSelector decodes each column (maps.row_selector)."""
    columns = [f"v{i}" for i in range(len(names))]
    out = []
    for name, col in zip(names, columns, strict=True):
        literal = (
            f"CASE WHEN {col} IS NULL THEN 'NULL' "
            f"ELSE '''' || replace(CAST({col} AS varchar), '''', '''''') || '''' END"
        )
        out.append(f'to_base64(to_utf8({literal})) AS "{name}_sql"')
        json_text = f"json_format(CAST(ARRAY[{col}] AS JSON))"
        out.append(f'to_base64(to_utf8({json_text})) AS "{name}_json"')
    return (
        "SELECT\n    "
        + ",\n    ".join(out)
        + f"\nFROM (\n{sql}\n) AS bakery_rows ({', '.join(columns)})"
    )


def check_columns(sql: str) -> list[str]:
    """The output column names of a check query, or [] when they are not known at synth."""
    import sqlglot

    try:
        names = sqlglot.parse_one(sql, read="athena").named_selects  # type: ignore[attr-defined]
    except sqlglot.errors.ParseError:
        return []
    return [] if not names or any(n in ("", "*") for n in names) else list(names)


def check_row_text(sql: str, columns: list[str]) -> str:
    """`sql` giving its first row as one never-NULL text, `c1=v1, c2=v2` (NULL as None),
    as the local engine words a failed check."""
    cols = [f"c{i}" for i in range(len(columns))]
    parts = []
    for i, (name, col) in enumerate(zip(columns, cols, strict=True)):
        label = ("" if i == 0 else ", ") + f"{name}="
        parts.append(f"{sql_literal(label)} || coalesce(CAST({col} AS varchar), 'None')")
    return (
        f"SELECT {' || '.join(parts)} AS failed_row\n"
        f"FROM (\n{sql}\n) AS bakery_check ({', '.join(cols)})\nLIMIT 1"
    )
