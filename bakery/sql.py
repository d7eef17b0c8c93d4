"""Query templates: Jinja2 rendering (strict) and sqlglot analysis in Athena's dialect.

sqlglot is imported only when a query is analysed afresh: a validate whose analyses are
all remembered (bakery.query_cache) never imports it.

Over the ~400-line guide because rendering and analysis share the error type and the
positions they report (a .sql file's line and column), and other modules import both
from here; the checks that need sqlglot's types live in bakery.sql_checks.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from jinja2.loaders import split_template_path
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError, safe_range
from jinja2.utils import Namespace

from bakery.bng_sql import bng_to_wgs84
from bakery.errors import BakeryError
from bakery.project_files import FileRefused, read_text

if TYPE_CHECKING:
    from sqlglot import exp

BUILTIN_TEMPLATES = Path(__file__).parent / "templates"
DIALECT = "athena"


class TemplateProblem(BakeryError):
    """A template could not be rendered or parsed; `line`/`col` are inside `file` when known."""

    def __init__(self, message: str, file: str | None = None, line: int = 0, col: int = 0):
        super().__init__(message)
        self.message, self.file, self.line, self.col = message, file, line, col


@dataclass
class Rendered:
    sql: str
    reads: list[str] = field(default_factory=list)  # table refs, in order of first use
    params: list[str] = field(default_factory=list)  # runtime parameters, one per '?'


# Athena refuses a query string over 262,144 bytes, so no template needs to render more;
# and a template is text, so rendering one takes milliseconds: both caps stop a template
# (from a pull request, rendered in a pre-commit hook) that would eat memory or time.
MAX_RENDER_CHARS = 256 * 1024
MAX_RENDER_SECONDS = 2.0


class RenderLimit(SecurityError):
    """A template went past the render-size or render-time cap."""


_deadline = threading.local()


def _tick() -> None:
    end = getattr(_deadline, "at", None)
    if end is not None and time.monotonic() > end:
        raise RenderLimit(
            f"rendering took longer than {MAX_RENDER_SECONDS:g} s; a template must render "
            "in milliseconds (look for big loops or repeated expansion)"
        )


def _too_big(value: Any) -> None:
    if isinstance(value, str | bytes | list | tuple | dict) and len(value) > MAX_RENDER_CHARS:
        raise RenderLimit(
            f"a value of {len(value):,} items is over the render cap of {MAX_RENDER_CHARS:,} "
            "(Athena's query size limit); make the template smaller"
        )


def _big_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_RENDER_CHARS


def _limited_range(*args: int) -> Any:
    for value in safe_range(*args):
        _tick()
        yield value


class _LimitedNamespace(Namespace):
    def __setitem__(self, name: str, value: Any) -> None:
        _tick()
        _too_big(value)
        super().__setitem__(name, value)


def _limited_filter(func: Callable) -> Callable:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _tick()
        if any(_big_int(a) for a in (*args, *kwargs.values())):
            raise RenderLimit(f"a number over {MAX_RENDER_CHARS:,} passed to a filter")
        result = func(*args, **kwargs)
        _too_big(result)
        return result

    return wrapper


class _LimitedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox with a size check on every operator, call and filter result, and a
    time check on every call and loop step: `'a' * 100000000` fails before allocating."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.filters = {name: _limited_filter(f) for name, f in self.filters.items()}
        self.globals["range"] = _limited_range
        self.globals["namespace"] = _LimitedNamespace

    def compile(
        self,
        source: Any,
        name: str | None = None,
        filename: str | None = None,
        raw: bool = False,
        defer_init: bool = False,
    ) -> Any:
        if raw or not isinstance(source, str):
            return super().compile(source, name, filename, raw, defer_init)  # type: ignore[call-overload]
        from bakery import query_cache

        return query_cache.compiled(
            (source, name or "", filename or "", defer_init),
            lambda: super(_LimitedSandbox, self).compile(source, name, filename, False, defer_init),
        )

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _tick()
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                sized = isinstance(seq, str | bytes | list | tuple) and isinstance(n, int)
                if sized and len(seq) * n > MAX_RENDER_CHARS:
                    raise RenderLimit(
                        f"{len(seq):,} x {n:,} items is over the render cap of "
                        f"{MAX_RENDER_CHARS:,} (Athena's query size limit)"
                    )
        if operator == "**" and isinstance(right, int) and abs(right) > 64:
            raise RenderLimit("an exponent over 64 in a template")
        if operator == "%" and isinstance(right, tuple) and any(_big_int(v) for v in right):
            raise RenderLimit(f"a number over {MAX_RENDER_CHARS:,} in a % format")
        result = super().call_binop(context, operator, left, right)
        _too_big(result)
        return result

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        _tick()
        for value in (*args, *kwargs.values()):
            if _big_int(value):
                raise RenderLimit(f"a number over {MAX_RENDER_CHARS:,} passed to a call")
            _too_big(value)
        result = super().call(__context, __obj, *args, **kwargs)
        _too_big(result)
        return result


class _ProjectLoader(jinja2.BaseLoader):
    """Templates from the project (then bakery's built-ins): regular files whose real
    path is inside their folder, under the size cap (bakery.project_files), so
    {% include %} cannot follow a symlink out of the project."""

    def __init__(self, roots: list[Path]):
        self.roots = roots

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        pieces = split_template_path(template)
        for root in self.roots:
            path = root.joinpath(*pieces)
            if not os.path.lexists(path):
                continue
            try:
                text = read_text(root, path)
            except FileRefused as exc:
                raise TemplateProblem(f"template {template!r} refused: {exc}") from None
            mtime = os.path.getmtime(path)

            def uptodate(path: Path = path, mtime: float = mtime) -> bool:
                try:
                    return os.path.getmtime(path) == mtime
                except OSError:
                    return False

            return text, str(path), uptodate
        raise jinja2.TemplateNotFound(template)


def _environment(root: Path | None) -> jinja2.Environment:
    # Sandboxed: specs come from pull requests and `bakery validate` runs them in a
    # pre-commit hook, so a template must not reach Python internals.
    return _LimitedSandbox(
        loader=_ProjectLoader([root, BUILTIN_TEMPLATES]) if root else None,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )


_ENVS: dict[Path | None, jinja2.Environment] = {}


def environment(root: Path | None) -> jinja2.Environment:
    if root not in _ENVS:
        _ENVS[root] = _environment(root)
    return _ENVS[root]


def render_capped(template: jinja2.Template, values: dict[str, Any]) -> str:
    """Render under the size and time caps; raises RenderLimit (a TemplateError)."""
    _deadline.at = time.monotonic() + MAX_RENDER_SECONDS
    try:
        parts: list[str] = []
        size = 0
        for chunk in template.generate(**values):
            size += len(chunk)
            if size > MAX_RENDER_CHARS:
                raise RenderLimit(
                    f"the rendered text is over {MAX_RENDER_CHARS:,} characters "
                    "(Athena's query size limit); make the template smaller"
                )
            parts.append(chunk)
            _tick()
        return "".join(parts)
    except (RecursionError, MemoryError):
        raise RenderLimit("the template recurses or expands without end") from None
    finally:
        _deadline.at = None


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
        functions = {"ref": ref, "param": param, "bng_to_wgs84": bng_to_wgs84}
        out.sql = render_capped(template, {**context, **functions})
        out.sql = out.sql.strip().rstrip(";")
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(f"template syntax error: {exc.message}", name, exc.lineno) from None
    except RenderLimit as exc:
        raise TemplateProblem(f"template refused: {exc}", name) from None
    except jinja2.UndefinedError as exc:
        text = env.loader.get_source(env, source)[0] if is_file and env.loader else source
        line, col = _undefined_at(exc, text)
        raise TemplateProblem(undefined_message(exc, text, context), name, line, col) from None
    except jinja2.TemplateNotFound:
        raise TemplateProblem(f"template {source!r} not found") from None
    except LookupError as exc:
        raise TemplateProblem(str(exc.args[0]) if exc.args else str(exc), name) from None
    except jinja2.TemplateError as exc:
        raise TemplateProblem(f"template error: {exc}", name) from None
    return out


def _undefined_name(exc: jinja2.UndefinedError) -> str | None:
    m = re.search(r"has no attribute '([^']+)'|'([^']+)' is undefined", exc.message or "")
    return (m.group(1) or m.group(2)) if m else None


def undefined_message(exc: jinja2.UndefinedError, text: str, context: dict[str, Any]) -> str:
    """Say which variable is undefined and what is defined: `buckets.privat` lists the
    bucket aliases, `vars.x` the project variables."""
    name = _undefined_name(exc)
    for group, what in (("buckets", "bucket alias"), ("vars", "project variable")):
        known = context.get(group)
        if name and isinstance(known, dict) and re.search(rf"\b{group}\s*\.\s*{name}\b", text):
            close = difflib.get_close_matches(name, list(known), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            return (
                f"unknown {what} {name!r} ({group}.{name}); {hint}"
                f"known: {', '.join(known) or 'none'}"
            )
    return f"template uses an undefined variable: {exc.message}"


def _undefined_at(exc: BaseException, text: str) -> tuple[int, int]:
    """Line (from Jinja's rewritten traceback) and column of an undefined variable."""
    import traceback

    line = 0
    for frame in traceback.extract_tb(exc.__traceback__):
        if not frame.filename.endswith(".py") and frame.lineno:
            line = frame.lineno
    if not line:
        return 0, 0
    lines = text.splitlines()
    name = _undefined_name(exc) if isinstance(exc, jinja2.UndefinedError) else None
    col = 1
    if name and line <= len(lines):
        found = lines[line - 1].find(name)
        col = found + 1 if found >= 0 else 1
    return line, col


def render_text(text: str, context: dict[str, Any]) -> str:
    """Render a one-line template such as a location; raises jinja2.TemplateError."""
    return render_capped(environment(None).from_string(text), context).strip()


def _glue_name(qualified: str, context: dict[str, Any]) -> str:
    return f"{context['glue_database']}.{qualified.split('.', 1)[1]}"


@dataclass
class Output:
    """One output column of a query: its name, the shape of its inferred type
    (sql_checks.kind; None when unknown or not inferred) and where it starts."""

    alias_or_name: str | None
    kind: Any
    line: int
    col: int


@dataclass
class Analysis:
    output_columns: list[str]
    tables: list[str]  # "db.table" read by the query
    selects: list[Output] = field(default_factory=list)  # typed when annotated


def analyse(
    sql: str,
    schema: dict[str, dict[str, dict[str, str]]],
    file: str | None,
    *,
    annotate: bool = False,
) -> Analysis:
    """Parse a SELECT in Athena SQL and resolve its tables and columns against `schema`.

    schema: {database: {table: {column: type}}}. Raises TemplateProblem saying what
    does not resolve, or which function Athena (or the local engine) lacks, so a bad
    query is caught at commit time, not an hour into a run. annotate: infer the type of
    each output column (Analysis.selects[i].kind). A passing analysis is remembered
    when a command enabled bakery.query_cache; a failing one never is.
    """
    from bakery import query_cache

    store = query_cache.current()
    if store is not None:
        hit = store.lookup(sql, schema, annotate)
        if hit is not None:
            remembered = [Output(*o) for o in hit["outputs"]]
            tables = [f"{db}.{t}" for db, t in hit["pairs"]]
            return Analysis(hit["columns"], tables, remembered)
    analysis, pairs = _analyse(sql, schema, file, annotate)
    if store is not None:
        outputs = [(o.alias_or_name, o.kind, o.line, o.col) for o in analysis.selects]
        store.remember(sql, schema, annotate, pairs, analysis.output_columns, outputs)
    return analysis


def _analyse(
    sql: str, schema: dict[str, dict[str, dict[str, str]]], file: str | None, annotate: bool
) -> tuple[Analysis, list[list[str]]]:
    """analyse() afresh; also the [database, table] pairs read, in order."""
    from sqlglot import exp
    from sqlglot.dialects.dialect import Dialect
    from sqlglot.errors import OptimizeError, ParseError, TokenError
    from sqlglot.optimizer.qualify import qualify

    from bakery.sql_checks import check_functions, expr_kind, node_position

    dialect = Dialect.get_or_raise(DIALECT)
    try:
        # tokenised once: the function check below reads the same tokens
        tokens = dialect.tokenize(sql)
        tree = dialect.parser().parse(tokens, sql)[0]
        if tree is None:
            raise ParseError("no statement")
    except TokenError as exc:
        raise TemplateProblem(f"not valid Athena SQL: {exc}", file, 1, 1) from None
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
    found = check_functions(sql, tree, tokens)
    if found is not None:
        raise TemplateProblem(found.message, file, found.line, found.col)
    _check_params_in_where(sql, tokens, file)
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    tables: list[str] = []
    pairs: list[list[str]] = []
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
            pairs.append([db, table.name])
    catalog: dict[str, object] = dict(schema)  # sqlglot's parameter type
    try:
        qualified = qualify(
            tree.copy(),
            schema=catalog,
            dialect=DIALECT,
            validate_qualify_columns=True,
            identify=False,
        )
    except OptimizeError as exc:
        line, col = _unresolved_at(str(exc), sql, tree)
        raise TemplateProblem(
            _explain_unresolved(str(exc), schema, tables), file, line, col
        ) from None
    selects: list[Output] = []
    if annotate:
        from sqlglot.optimizer.annotate_types import annotate_types

        typed = annotate_types(qualified, schema=catalog, dialect=DIALECT)
        selects = [
            Output(s.alias_or_name, expr_kind(s), *node_position(sql, s)) for s in typed.selects
        ]
    return Analysis(list(qualified.named_selects), tables, selects), pairs


def _unresolved_at(message: str, sql: str, tree: exp.Expr) -> tuple[int, int]:
    """Where the column sqlglot could not resolve is used (0, 0 when not found)."""
    from sqlglot import exp

    from bakery.sql_checks import node_position

    m = re.match(r"Column '([^']+)' could not be resolved|Unknown column: (\S+)", message)
    if not m:
        return 0, 0
    name = (m.group(1) or m.group(2)).split(".")[-1].strip('"')
    for column in tree.find_all(exp.Column):
        if column.name == name:
            return node_position(sql, column)
    return 0, 0


_PARAM_MARK = "bakery_param_{}"


def _check_params_in_where(sql: str, tokens: list, file: str | None) -> None:
    """Athena takes execution parameters (param(), rendered `?`) in a WHERE clause only
    ("SELECT ? FROM t is not supported"): refuse any other place, at its line.

    Each `?` token is renamed to a column of its own before parsing, so a placeholder
    found outside WHERE is traced back to its line and column.
    """
    from sqlglot import exp
    from sqlglot.dialects.dialect import Dialect
    from sqlglot.tokens import TokenType

    tokens = [t for t in tokens if t.token_type == TokenType.PLACEHOLDER]
    if not tokens:
        return
    marked = sql
    for n, token in reversed(list(enumerate(tokens))):
        marked = marked[: token.start] + _PARAM_MARK.format(n) + marked[token.end + 1 :]
    tree = Dialect.get_or_raise(DIALECT).parse(marked)[0]
    if tree is None:
        return
    for column in tree.find_all(exp.Column):
        m = re.fullmatch(_PARAM_MARK.format(r"(\d+)"), column.name)
        if m and column.find_ancestor(exp.Where) is None:
            token = tokens[int(m.group(1))]
            where = "" if file else f" (line {token.line}, col {token.col})"
            raise TemplateProblem(
                "param() is only allowed in a WHERE clause: Athena accepts execution "
                "parameters there only (SELECT ? FROM t is not supported); compare the "
                f"value in WHERE and select the column it equals instead{where}",
                file,
                token.line,
                max(token.col, 1),
            )


def _explain_unresolved(message: str, schema: dict, tables: list[str]) -> str:
    m = re.match(r"Column '([^']+)' could not be resolved|Unknown column: (\S+)", message)
    if not m:
        return f"query does not resolve: {message.split('. Line:')[0]}"
    column = (m.group(1) or m.group(2)).split(".")[-1].strip('"')
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
