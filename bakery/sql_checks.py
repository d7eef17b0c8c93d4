"""What Athena would reject that sqlglot's name resolution does not see: functions Athena
(or the local DuckDB) lacks, and output types that do not fit the table written.

Positions are 1-based (line, column) in the rendered SQL, which keeps the template's
lines, so problems point into the .sql file. check_types works on remembered output
types (bakery.sql.Output) and imports sqlglot only for a declared type it has not seen
(bakery.query_cache), so a validate answered from remembered analyses never imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from bakery import function_catalog

if TYPE_CHECKING:
    from sqlglot import exp

    from bakery.sql import Output

DIALECT = "athena"


@dataclass
class Finding:
    message: str
    line: int
    col: int


def position(sql: str, start: int) -> tuple[int, int]:
    """Character offset -> (line, column), both 1-based."""
    line = sql.count("\n", 0, start) + 1
    return line, start - (sql.rfind("\n", 0, start) + 1) + 1


def node_position(sql: str, node: exp.Expr) -> tuple[int, int]:
    """Where an expression starts in `sql` (0, 0 when sqlglot kept no position)."""
    starts = [n.meta["start"] for n in node.walk() if n.meta and "start" in n.meta]
    if not starts:
        return 0, 0
    return position(sql, min(starts))


def _leading_name(text: str) -> str | None:
    head, paren, _ = text.partition("(")
    head = head.strip()
    if not paren or not head.replace("_", "").isalnum():
        return None
    return head


def calls(sql: str, tokens: list, ctes: set[str]) -> list[tuple[str, int]]:
    """(name, character offset) of every `name(` in the token stream that calls a function."""
    from sqlglot.tokens import TokenType

    out = []
    for i, tok in enumerate(tokens[:-1]):
        if tokens[i + 1].token_type != TokenType.L_PAREN:
            continue
        if tok.token_type in (TokenType.STRING, TokenType.NUMBER, TokenType.R_PAREN):
            continue
        if i and tokens[i - 1].token_type in (TokenType.DOT, TokenType.DCOLON):
            continue
        text = tok.text
        if not text.replace("_", "").isalnum() or text[0].isdigit():
            continue
        if sql[tok.start : tok.end + 1] != text:  # quoted identifiers are never calls
            continue
        if text.lower() in ctes:
            continue
        out.append((text, tok.start))
    return out


def check_functions(sql: str, tree: exp.Expr, tokens: list) -> Finding | None:
    """The first function call Athena engine 3 or the local engine cannot run; `tokens`
    are the Athena tokens of `sql`. Both from data files (bakery/function_catalog.py),
    so no DuckDB dialect is loaded here."""
    from sqlglot import exp

    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    for name, start in calls(sql, tokens, ctes):
        if not function_catalog.in_athena(name):
            ideas = function_catalog.suggestions(name)
            hint = f"; did you mean {' or '.join(repr(i) for i in ideas)}?" if ideas else ""
            return Finding(
                f"Athena (engine 3) has no function {name!r}{hint}", *position(sql, start)
            )
        if not function_catalog.runs_locally(name):
            return Finding(
                f"{name.lower()}() runs on Athena but not on the local engine (DuckDB, after "
                "sqlglot's translation), so `bakery bake` would fail; use another function "
                "or ask for a macro in bakery/engine/duck.py",
                *position(sql, start),
            )
    return None


# ---------------------------------------------------------------- types


@cache
def _kinds() -> dict[str, set]:
    from sqlglot import exp

    t = exp.DataType.Type
    return {
        "string": {t.VARCHAR, t.CHAR, t.TEXT, t.NVARCHAR, t.NCHAR},
        "integer": {t.TINYINT, t.SMALLINT, t.INT, t.BIGINT},
        "floating": {t.FLOAT, t.DOUBLE},
        "decimal": {t.DECIMAL},
        "boolean": {t.BOOLEAN},
        "date": {t.DATE},
        "timestamp": {t.TIMESTAMP, t.TIMESTAMPTZ, t.DATETIME},
        "binary": {t.VARBINARY, t.BINARY},
        "map": {t.MAP},
        "struct": {t.STRUCT},
    }


_CAST = {
    "string": "varchar",
    "integer": "bigint",
    "floating": "double",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}


def kind(dt: exp.DataType | None) -> str | tuple | None:
    """A comparable shape: 'string', 'integer', ..., ('array', element) or None (unknown)."""
    from sqlglot import exp

    if dt is None:
        return None
    if dt.this == exp.DataType.Type.ARRAY:
        inner = dt.expressions[0] if dt.expressions else None
        return ("array", kind(inner) if isinstance(inner, exp.DataType) else None)
    for name, types in _kinds().items():
        if dt.this in types:
            return name
    return None


# Functions whose result is an array even where sqlglot leaves the type unknown; the
# element type is that of their first argument when it is an array.
_ARRAY_OF_FIRST = (
    "ArraySort",
    "ArrayFilter",
    "ArrayDistinct",
    "ArrayUnion",
    "ArrayIntersect",
    "ArrayExcept",
    "ArrayConcat",
    "ArrayRemove",
    "Slice",
)
_ARRAYS = ("ArrayAgg", "Array", "Split", "RegexpSplit", *_ARRAY_OF_FIRST)


def expr_kind(node: exp.Expr) -> str | tuple | None:
    """kind() of an expression's inferred type, filling in the arrays sqlglot leaves
    untyped (array_sort(filter(...)) is still an array)."""
    from sqlglot import exp

    found = kind(node.type) if isinstance(node.type, exp.DataType) else None
    if found is not None:
        return found
    inner = node.this if isinstance(node, exp.Alias) else node
    name = type(inner).__name__
    if name not in _ARRAYS:
        return None
    if name in _ARRAY_OF_FIRST and isinstance(inner.this, exp.Expression):
        first = expr_kind(inner.this)
        if isinstance(first, tuple):
            return first
    return ("array", None)


def fits(got: str | tuple | None, want: str | tuple | None) -> bool:
    if got is None or want is None:
        return True
    if isinstance(got, tuple) or isinstance(want, tuple):
        if not (isinstance(got, tuple) and isinstance(want, tuple)):
            return False
        return fits(got[1], want[1])
    return got == want


def describe(k: str | tuple | None) -> str:
    if isinstance(k, tuple):
        return f"array<{describe(k[1]) if k[1] else '?'}>"
    return {"string": "string", "integer": "an integer", "floating": "double"}.get(
        k or "", k or "?"
    )


def hive_kind(hive: str) -> str | tuple | None:
    from bakery import query_cache

    store = query_cache.current()
    if store is not None:
        found, remembered = store.kind_of(hive)
        if found:
            return remembered
    from sqlglot import exp

    try:
        result = kind(exp.DataType.build(hive, dialect="hive"))
    except Exception:  # a declared type sqlglot cannot read: do not guess
        result = None
    if store is not None:
        store.remember_kind(hive, result)
    return result


def check_types(
    sql: str, selects: list[Output], columns: list[tuple[str, str]], table: str
) -> list[Finding]:
    """Every output column whose inferred type cannot go into the declared column."""
    out: list[Finding] = []
    for select, (name, hive) in zip(selects, columns, strict=False):
        got, want = select.kind, hive_kind(hive)
        if fits(got, want):
            continue
        line, col = select.line, select.col
        fix = (
            f"CAST(... AS {_CAST[want]})"
            if isinstance(want, str) and want in _CAST and not isinstance(got, tuple)
            else "a different expression"
        )
        out.append(
            Finding(
                f"column {name!r} is {describe(got)} here but table {table!r} declares it "
                f"{hive}; Athena would fail reading it back: use {fix} or change the column "
                "type",
                line,
                col,
            )
        )
    return out
