"""Query templates: Jinja2 rendering (strict) and sqlglot analysis in Athena's dialect."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import sqlglot
from jinja2.sandbox import ImmutableSandboxedEnvironment
from sqlglot import exp
from sqlglot.errors import OptimizeError, ParseError
from sqlglot.optimizer.qualify import qualify

BUILTIN_TEMPLATES = Path(__file__).parent / "templates"
DIALECT = "athena"


class TemplateProblem(Exception):
    """A template could not be rendered or parsed; `line`/`col` are inside `file` when known."""

    def __init__(self, message: str, file: str | None = None, line: int = 0, col: int = 0):
        super().__init__(message)
        self.message, self.file, self.line, self.col = message, file, line, col


@dataclass
class Rendered:
    sql: str
    reads: list[str] = field(default_factory=list)  # table refs, in order of first use
    params: list[str] = field(default_factory=list)  # runtime parameters, one per '?'


def _environment(root: Path | None) -> jinja2.Environment:
    # Sandboxed: specs come from pull requests and `bakery validate` runs them in a
    # pre-commit hook, so a template must not reach Python internals.
    return ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader([str(root), str(BUILTIN_TEMPLATES)]) if root else None,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )


_ENVS: dict[Path | None, jinja2.Environment] = {}


def environment(root: Path | None) -> jinja2.Environment:
    if root not in _ENVS:
        _ENVS[root] = _environment(root)
    return _ENVS[root]


def render(
    root: Path,
    source: str,
    *,
    is_file: bool,
    context: dict[str, Any],
    resolve: Callable[[str], str],
) -> Rendered:
    """Render a template; `resolve` maps a table ref to its qualified Glue name (or raises)."""
    out = Rendered("")

    def ref(name: str) -> str:
        qualified = resolve(name)
        if qualified not in out.reads:
            out.reads.append(qualified)
        return _glue_name(qualified, context)

    def param(name: str) -> str:
        # Runtime values travel as execution parameters, never as SQL text.
        out.params.append(name)
        return "?"

    env = environment(root)
    name = source if is_file else "<inline sql>"
    try:
        template = env.get_template(source) if is_file else env.from_string(source)
        out.sql = template.render(**context, ref=ref, param=param).strip().rstrip(";")
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(f"template syntax error: {exc.message}", name, exc.lineno) from None
    except jinja2.UndefinedError as exc:
        raise TemplateProblem(f"template uses an undefined variable: {exc.message}", name) from None
    except jinja2.TemplateNotFound:
        raise TemplateProblem(f"template {source!r} not found") from None
    except LookupError as exc:
        raise TemplateProblem(str(exc.args[0]) if exc.args else str(exc), name) from None
    except jinja2.TemplateError as exc:
        raise TemplateProblem(f"template error: {exc}", name) from None
    return out


def render_text(text: str, context: dict[str, Any]) -> str:
    """Render a one-line template such as a location; raises jinja2.TemplateError."""
    return environment(None).from_string(text).render(**context).strip()


def _glue_name(qualified: str, context: dict[str, Any]) -> str:
    return f"{context['glue_database']}.{qualified.split('.', 1)[1]}"


@dataclass
class Analysis:
    output_columns: list[str]
    tables: list[str]  # "db.table" read by the query


def analyse(sql: str, schema: dict[str, dict[str, dict[str, str]]], file: str | None) -> Analysis:
    """Parse a SELECT in Athena SQL and resolve its tables and columns against `schema`.

    schema: {database: {table: {column: type}}}. Raises TemplateProblem saying what
    does not resolve, so a bad column is caught at commit time, not an hour into a run.
    """
    try:
        tree = sqlglot.parse_one(sql, read=DIALECT)
    except ParseError as exc:
        err = exc.errors[0] if exc.errors else {}
        desc = _parse_message(err.get("description") or str(exc).splitlines()[0])
        line, col = err.get("line") or 0, err.get("col") or 0
        where = "" if file else f" (line {line}, col {col})"
        raise TemplateProblem(f"not valid Athena SQL: {desc}{where}", file, line, col) from None
    if not isinstance(tree, exp.Query):
        raise TemplateProblem(
            f"a query template must be a SELECT, found {tree.key.upper()}", file, 1, 1
        )
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    tables: list[str] = []
    for table in tree.find_all(exp.Table):
        if not table.db and table.name in ctes:
            continue
        db = table.db
        if not db or db not in schema or table.name not in schema[db]:
            known = sorted(f"{d}.{t}" for d, ts in schema.items() for t in ts)
            raise TemplateProblem(
                f"query reads table {table.sql(dialect=DIALECT)!r}, which no spec declares; "
                f"use {{{{ ref('layer.table') }}}} with one of: {', '.join(known)}",
                file,
            )
        name = f"{db}.{table.name}"
        if name not in tables:
            tables.append(name)
    try:
        qualified = qualify(
            tree.copy(),
            schema=schema,
            dialect=DIALECT,
            validate_qualify_columns=True,
            identify=False,
        )
    except OptimizeError as exc:
        raise TemplateProblem(_explain_unresolved(str(exc), schema, tables), file) from None
    return Analysis(list(qualified.named_selects), tables)


def _explain_unresolved(message: str, schema: dict, tables: list[str]) -> str:
    m = re.match(r"Column '([^']+)' could not be resolved", message)
    if not m:
        return f"query does not resolve: {message.split('. Line:')[0]}"
    column = m.group(1).split(".")[-1].strip('"')
    available = [c for name in tables for c in schema[name.split(".")[0]][name.split(".")[1]]]
    close = difflib.get_close_matches(column, available, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    read = ", ".join(t.split(".")[1] for t in tables) or "no table"
    return f"column {column!r} is not in any table the query reads ({read}){hint}"


def _parse_message(text: str) -> str:
    """Turn sqlglot's internal wording into something a SQL author can act on."""
    text = re.sub(r"<Token token_type: [^,]+, text: ([^,]*),.*?>", r"'\1'", text)
    m = re.match(r"Required keyword: '\w+' missing for <class '[\w.]*\.(\w+)'>", text)
    if m:
        return f"incomplete {m.group(1).upper()} expression"
    return text
