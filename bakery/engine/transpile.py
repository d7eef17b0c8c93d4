"""Athena (Trino) SQL to DuckDB SQL with sqlglot.

Runtime values stay `?` placeholders, bound as prepared parameters by the caller.
Functions DuckDB lacks (ST_GeometryFromText, ST_Polygon, checksum) are DuckDB macros
created in `bakery.engine.duck`.

Maps: Trino's CAST(map AS JSON) writes the keys sorted (MapToJsonCast collects them in a
Java TreeMap), DuckDB in the map's own order. So every MAP(keys, values) built in a query
is built with its keys sorted: statically when the keys are string literals (sorted as
Java compares strings, by UTF-16 code unit), otherwise at run time (DuckDB's list_sort on
the entries). Then CAST(... AS JSON) and json_format give the same text on both engines,
for these maps and for the maps a query reads back from a table a query wrote.
"""

from __future__ import annotations

from functools import lru_cache

import sqlglot
from sqlglot import exp


def _java_order(text: str) -> bytes:
    return text.encode("utf-16-be", "surrogatepass")


def _sort_map_keys(tree: exp.Expression) -> exp.Expression:
    """Every MAP(ARRAY[...], ARRAY[...]) in the tree with its keys sorted, innermost first."""
    maps = sorted(tree.find_all(exp.Map), key=lambda m: -m.depth)
    for node in maps:
        keys, values = node.args.get("keys"), node.args.get("values")
        if not isinstance(keys, exp.Array) or not isinstance(values, exp.Array):
            continue
        if len(keys.expressions) == len(values.expressions) and all(
            isinstance(k, exp.Literal) and k.is_string for k in keys.expressions
        ):
            pairs = sorted(
                zip(keys.expressions, values.expressions, strict=True),
                key=lambda kv: _java_order(kv[0].this),
            )
            node.set("keys", exp.Array(expressions=[k for k, _ in pairs]))
            node.set("values", exp.Array(expressions=[v for _, v in pairs]))
            continue
        hole = exp.Placeholder()
        entries = exp.Anonymous(this="map_entries", expressions=[hole])
        wrapper = exp.Anonymous(
            this="map_from_entries",
            expressions=[exp.Anonymous(this="list_sort", expressions=[entries])],
        )
        if node is tree:
            return wrapper
        node.replace(wrapper)
        hole.replace(node)
    return tree


@lru_cache(maxsize=256)
def to_duckdb(sql: str) -> str:
    """Transpile one Athena statement; raises sqlglot.errors.ParseError on bad SQL."""
    statements = [s for s in sqlglot.parse(sql, read="athena") if s is not None]
    if len(statements) != 1:
        raise ValueError(f"expected one SQL statement, found {len(statements)}")
    statement = statements[0]
    assert isinstance(statement, exp.Expression)
    return _sort_map_keys(statement).sql(dialect="duckdb")
