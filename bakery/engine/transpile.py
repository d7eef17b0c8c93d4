"""Athena (Trino) SQL to DuckDB SQL with sqlglot.

Runtime values stay `?` placeholders, bound as prepared parameters by the caller.
Functions DuckDB lacks (ST_GeometryFromText, ST_Polygon, checksum) are DuckDB macros
created in `bakery.engine.duck`.
"""

from __future__ import annotations

from functools import lru_cache

import sqlglot


@lru_cache(maxsize=256)
def to_duckdb(sql: str) -> str:
    """Transpile one Athena statement; raises sqlglot.errors.ParseError on bad SQL."""
    out = sqlglot.transpile(sql, read="athena", write="duckdb")
    if len(out) != 1:
        raise ValueError(f"expected one SQL statement, found {len(out)}")
    return out[0]
