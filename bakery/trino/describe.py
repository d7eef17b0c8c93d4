"""`bakery validate --engine trino`: every athena_query's SELECT planned by a real Trino.

sqlglot infers output types from what it knows of Athena's functions; where it cannot
(a function it does not know, an expression it leaves untyped) a wrong type passes the
normal validate. Trino, Athena's engine, types every output column itself: each step's
rendered SELECT is prepared (`?` parameters stay unbound) and `DESCRIBE OUTPUT` lists its
columns and types (https://trino.io/docs/current/sql/describe-output.html), compared with
the written table's declared columns. Tables are registered empty: nothing is read.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

from bakery.errors import Problem
from bakery.plan import Plan, StepPlan, TablePlan
from bakery.store import LocalStore
from bakery.trino.tables import Tables, trino_type

PREFIX = "PREPARE bakery_validate FROM "  # on the SELECT's first line: lines stay the template's


def _normal(trino: str) -> str:
    """A Trino type without what does not change how the value is stored: a literal's
    varchar length, a timestamp's precision."""
    t = trino.strip().lower()
    t = re.sub(r"\bvarchar\(\d+\)", "varchar", t)
    t = re.sub(r"\bchar\(\d+\)", "varchar", t)
    return re.sub(r"\btimestamp\(\d+\)", "timestamp", t)


def _fits(got: str, want: str) -> bool:
    # NULL (Trino's `unknown`) goes into any column
    return got == "unknown" or _normal(got) == _normal(want)


def _template_line(template: list[str], sql: str, line: int, col: int) -> tuple[int, int]:
    """The template's position of the rendered SQL's (line, col): a `{%-` tag swallows
    the newline before it, so rendered lines can sit above the template's. The first
    template line with the same text; the rendered position when none has."""
    rendered = sql.splitlines()
    if not 0 < line <= len(rendered) or not rendered[line - 1].strip():
        return line, col
    text = rendered[line - 1]
    for n, each in enumerate(template, 1):
        if each.strip() == text.strip():
            return n, max(
                1, col + (len(each) - len(each.lstrip())) - (len(text) - len(text.lstrip()))
            )
    return line, col


def _line_of(sql: str, column: str) -> tuple[int, int]:
    """Where the SELECT names its output column (the last `AS name`), else line 1."""
    pattern = rf"\bAS\s+\"?{re.escape(column)}\"?(?![\w])"
    matches = list(re.finditer(pattern, sql, re.IGNORECASE))
    if not matches:
        return 1, 1
    found = matches[-1]
    before = sql[: found.start()]
    return before.count("\n") + 1, found.start() - (before.rfind("\n") + 1) + 1


def _steps(plan: Plan) -> list[StepPlan]:
    return [
        s
        for layer in plan.layers
        for s in layer.walk()
        if s.kind == "athena_query" and s.sql and s.template
    ]


def _trino_message(exc: Exception) -> tuple[str, int, int]:
    message = getattr(exc, "message", None) or str(exc)
    where = getattr(exc, "error_location", None)
    line, col = where if where else (1, 1)
    if line == 1:
        col = max(1, col - len(PREFIX))
    return str(message).splitlines()[0], line, col


def check_step(
    con: Any, step: StepPlan, written: list[TablePlan], template: list[str]
) -> list[Problem]:
    """The step's problems Trino finds: what it refuses, and output columns whose type
    (or name, or place) does not match the tables written. With a quarantine the SELECT
    feeds two tables, each a subset of its columns (bakery.kinds.quarantine)."""
    assert step.sql and step.template
    sql = step.sql
    path = f"{step.layer}.steps.{step.id}"

    def at(line: int, col: int) -> tuple[int, int]:
        return _template_line(template, sql, line, col)

    cur = con.cursor()
    try:
        cur.execute(PREFIX + step.sql)
        cur.fetchall()
        cur.execute("DESCRIBE OUTPUT bakery_validate")
        rows = cur.fetchall()
    except Exception as exc:  # trino.exceptions.TrinoUserError: a rejected function or syntax
        if type(exc).__module__.split(".")[0] != "trino":
            raise
        message, line, col = _trino_message(exc)
        line, col = at(line, col)
        return [Problem(step.template, line, col, path, f"Trino rejects this query: {message}")]
    finally:
        cur.close()
    # DESCRIBE OUTPUT's columns: Column Name, Catalog, Schema, Table, Type, Type Size, Aliased
    got = {str(r[0]): str(r[4]) for r in rows}
    out = []
    for into in written:
        want = [(c.name, trino_type(c.type)) for c in into.all_columns]
        names = [w[0] for w in want]
        if (len(written) == 1 and list(got) != names) or set(names) - set(got):
            line, col = at(*_line_of(sql, next(iter(got), "")))
            out.append(
                Problem(
                    step.template,
                    line,
                    col,
                    path,
                    f"Trino's output columns {', '.join(got)} do not match table "
                    f"{into.name!r} ({', '.join(names)}); partition keys come last",
                )
            )
            continue
        for name, need in want:
            if not _fits(got[name], need):
                line, col = at(*_line_of(sql, name))
                out.append(
                    Problem(
                        step.template,
                        line,
                        col,
                        path,
                        f"column {name!r} is {got[name]} on Trino but table {into.name!r} "
                        f"declares it {need}; Athena would fail writing or reading it: CAST "
                        f"it to {need} or change the column type",
                    )
                )
    return out


def check(plan: Plan, server: Any) -> tuple[list[Problem], int]:
    """Every athena_query of the plan described by Trino: its problems and how many steps
    were checked."""
    steps = _steps(plan)
    problems: list[Problem] = []
    with tempfile.TemporaryDirectory(prefix="bakery-validate-") as folder:
        tables = Tables(server.connect(), LocalStore(Path(folder)))
        for table in plan.tables.values():
            tables.register(table, table.location)
        for step in steps:
            written = [plan.tables[ref] for ref in step.writes if ref in plan.tables]
            assert step.template
            source = (plan.root / step.template).read_text().splitlines()
            problems += check_step(tables.con, step, written, source)
    return problems, len(steps)
