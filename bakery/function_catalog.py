"""Which functions exist where: Athena engine version 3 and the local DuckDB (+ spatial).

Both lists are data files in bakery/data/, read once, so `bakery validate` needs neither
Athena nor DuckDB:
- athena_functions.txt: from Trino's documented list of functions (see its header);
- duckdb_functions.txt: written by `uv run python -m bakery.engine.function_lists` from
  the pinned DuckDB with its spatial extension and bakery's macros;
- athena_not_local.txt: the Athena functions that DuckDB cannot run after sqlglot's
  translation, written by the same command (a test checks both are current).
The writer lives with the engine: it opens DuckDB, which this module must never load.
"""

from __future__ import annotations

import difflib
from functools import cache
from pathlib import Path

DATA = Path(__file__).parent / "data"

# Words that take parentheses in SQL without being functions, and type names in CAST.
SYNTAX = frozenset(
    (
        "all",
        "and",
        "any",
        "array",
        "as",
        "between",
        "bigint",
        "boolean",
        "by",
        "case",
        "cast",
        "char",
        "date",
        "decimal",
        "distinct",
        "double",
        "else",
        "end",
        "exists",
        "filter",
        "from",
        "having",
        "in",
        "int",
        "integer",
        "interval",
        "is",
        "join",
        "lateral",
        "like",
        "map",
        "not",
        "null",
        "on",
        "or",
        "order",
        "over",
        "partition",
        "real",
        "row",
        "select",
        "smallint",
        "some",
        "table",
        "then",
        "time",
        "timestamp",
        "tinyint",
        "unnest",
        "using",
        "values",
        "varbinary",
        "varchar",
        "when",
        "where",
        "window",
        "with",
        "within",
        "zone",
        "",
    )
)
# Names from other SQL dialects (DuckDB, Spark, SQL Server, MySQL) and what Athena calls
# the same thing: "did you mean" by meaning, where spelling alone would not find it.
ALIASES: dict[str, list[str]] = {
    "len": ["cardinality", "length"],
    "size": ["cardinality"],
    "array_length": ["cardinality"],
    "array_size": ["cardinality"],
    "list_length": ["cardinality"],
    "strlen": ["length"],
    "char_length": ["length"],
    "character_length": ["length"],
    "instr": ["strpos"],
    "charindex": ["strpos"],
    "locate": ["strpos"],
    "ifnull": ["coalesce"],
    "nvl": ["coalesce"],
    "isnull": ["coalesce"],
    "iif": ["if"],
    "array_contains": ["contains"],
    "list_contains": ["contains"],
    "list_sort": ["array_sort"],
    "list_distinct": ["array_distinct"],
    "string_agg": ["listagg", "array_join"],
    "group_concat": ["listagg", "array_join"],
    "list": ["array_agg"],
    "collect_list": ["array_agg"],
    "collect_set": ["array_agg"],
    "datediff": ["date_diff"],
    "dateadd": ["date_add"],
    "getdate": ["now", "current_timestamp"],
    "ucase": ["upper"],
    "lcase": ["lower"],
    "string_split": ["split"],
    "str_split": ["split"],
    "regexp_matches": ["regexp_like"],
    "st_geomfromtext": ["ST_GeometryFromText"],
    "st_makepoint": ["ST_Point"],
    "st_x_min": ["ST_XMin"],
}


@cache
def _names(file: str) -> dict[str, str]:
    """lower-case name -> name as documented."""
    out = {}
    for line in (DATA / file).read_text(encoding="utf-8").splitlines():
        name = line.strip()
        if name and not name.startswith("#"):
            out[name.lower()] = name
    return out


# What DuckDB runs that duckdb_functions() does not list: window functions and special
# forms of its grammar.
DUCKDB_SYNTAX = frozenset(
    (
        "coalesce", "try_cast", "try", "extract", "grouping", "row_number", "rank",
        "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead", "first_value",
        "last_value", "nth_value", "columns", "exists", "unnest",
    )
)  # fmt: skip


def athena_functions() -> dict[str, str]:
    return _names("athena_functions.txt")


def duckdb_functions() -> dict[str, str]:
    return _names("duckdb_functions.txt")


def in_athena(name: str) -> bool:
    low = name.lower()
    return low in SYNTAX or low in athena_functions()


def in_duckdb(name: str) -> bool:
    low = name.lower()
    return low in SYNTAX or low in DUCKDB_SYNTAX or low in duckdb_functions()


def runs_locally(name: str) -> bool:
    """False for an Athena function the local engine cannot run once sqlglot has
    translated it (athena_not_local.txt)."""
    return name.lower() not in _names("athena_not_local.txt")


def suggestions(name: str) -> list[str]:
    """Athena functions a user probably meant: by meaning first, then by spelling."""
    low = name.lower()
    known = athena_functions()
    out = [n for n in ALIASES.get(low, []) if n.lower() in known or n in known.values()]
    if out:
        return out
    for close in difflib.get_close_matches(low, list(known), n=1, cutoff=0.75):
        if known[close] not in out:
            out.append(known[close])
    return out
