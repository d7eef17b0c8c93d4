"""Writes the function lists bakery/function_catalog.py reads (bakery/data/): the local
engine's functions, listed from the pinned DuckDB, and the Athena functions it cannot run.

Run `uv run python -m bakery.engine.function_lists` after upgrading DuckDB, sqlglot or the
macros, and commit bakery/data/ (tests/spec/test_validate_athena.py checks both are current).
"""

from __future__ import annotations

from pathlib import Path

from bakery.engine import duck
from bakery.function_catalog import DATA, athena_functions, in_duckdb


def write_duckdb_list(path: Path | None = None) -> Path:
    """Write the names of every function the local engine has (DuckDB, its spatial
    extension, bakery's macros)."""
    con = duck.connect()
    try:
        rows = con.execute(
            "SELECT DISTINCT function_name FROM duckdb_functions() ORDER BY lower(function_name)"
        ).fetchall()
        version = con.execute("SELECT version()").fetchone()[0]
    finally:
        con.close()
    target = path or DATA / "duckdb_functions.txt"
    names = sorted({r[0] for r in rows if r[0].replace("_", "").isalnum()}, key=str.lower)
    header = (
        f"# Functions of the local engine: DuckDB {version} with its spatial extension and\n"
        "# bakery's macros. Written by `uv run python -m bakery.engine.function_lists`.\n"
    )
    target.write_text(header + "\n".join(names) + "\n", encoding="utf-8")
    return target


def write_not_local_list(path: Path | None = None) -> Path:
    """Write the Athena functions the local engine cannot run: for each name in
    athena_functions.txt, sqlglot's DuckDB translation of a call with one to three
    arguments names no DuckDB function. `bakery validate` then needs no DuckDB dialect."""
    import sqlglot
    from sqlglot.errors import ErrorLevel

    missing = []
    for low, name in sorted(athena_functions().items()):
        if in_duckdb(low):
            continue
        runs = False
        for args in ("", "a", "a, b", "a, b, c"):
            try:
                tree = sqlglot.parse_one(f"SELECT {name}({args})", read="athena")
                text = tree.sql(dialect="duckdb", unsupported_level=ErrorLevel.IGNORE)
            except Exception:  # an arity sqlglot refuses: try the next
                continue
            head = text[len("SELECT ") :].split("(", 1)[0].strip()
            if "(" in text and head.replace("_", "").isalnum() and in_duckdb(head):
                runs = True
                break
            if "(" not in text or not head.replace("_", "").isalnum():
                runs = True  # became syntax (CASE, an operator): DuckDB runs it
                break
        if not runs:
            missing.append(name)
    target = path or DATA / "athena_not_local.txt"
    header = (
        "# Athena functions the local engine (DuckDB + spatial + bakery's macros) cannot run\n"
        "# after sqlglot's translation.\n"
        "# Written by `uv run python -m bakery.engine.function_lists`.\n"
    )
    target.write_text(header + "\n".join(missing) + "\n", encoding="utf-8")
    return target


if __name__ == "__main__":
    print(f"wrote {write_duckdb_list()}")
    print(f"wrote {write_not_local_list()}")
