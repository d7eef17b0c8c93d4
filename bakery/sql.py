"""Query templates: Jinja2 rendering (strict, in bakery.sandbox) and sqlglot analysis in
Athena's dialect.

sqlglot is imported only when a query is analysed afresh: a validate whose analyses are
all remembered (bakery.query_cache) never imports it.

Over the ~400-line guide because rendering and analysis share the error type and the
positions they report (a .sql file's line and column, an included file's own), and
other modules import both from here; the checks that need sqlglot's types live in
bakery.sql_checks, the sandbox and its caps in bakery.sandbox.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from jinja2.loaders import split_template_path

from bakery.bng_sql import bng_to_wgs84
from bakery.errors import BakeryError
from bakery.project_files import FileRefused, read_text, under_layers
from bakery.sandbox import LimitedSandbox, RenderLimit, render_capped

if TYPE_CHECKING:
    from sqlglot import exp

BUILTIN_TEMPLATES = Path(__file__).parent / "templates"
DIALECT = "athena"


class TemplateProblem(BakeryError):
    """A template could not be rendered or parsed; `line`/`col` are inside `file` (a
    project file, relative to the project) when known."""

    def __init__(
        self,
        message: str,
        file: str | None = None,
        line: int = 0,
        col: int = 0,
        name: str | None = None,
    ):
        super().__init__(message)
        self.message, self.file, self.line, self.col = message, file, line, col
        self.name = name  # the template refused, when it is one


@dataclass
class Rendered:
    sql: str
    reads: list[str] = field(default_factory=list)  # table refs, in order of first use
    params: list[str] = field(default_factory=list)  # runtime parameters, one per '?'


class _ProjectLoader(jinja2.BaseLoader):
    """Templates are named from the project folder: a project file under the layers
    folder (bakery.project_files.under_layers: no hidden name, no symlink out, a regular
    file under the size cap), or else one of bakery's built-ins. So `{% include %}`
    cannot read `.git/config`, `.env` or anything outside the layers folder."""

    def __init__(self, root: Path | None, layers_dir: str):
        self.root, self.layers_dir = root, layers_dir

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        pieces = split_template_path(template)
        path: Path | None = None
        if self.root is not None:
            layers = Path(os.path.normpath(self.layers_dir)).parts
            in_layers = layers == (".",) or tuple(pieces[: len(layers)]) == layers
            hidden = any(p.startswith(".") for p in pieces)
            if in_layers or hidden:
                path = self.root.joinpath(*pieces)
                try:
                    real = under_layers(self.root, self.layers_dir, path)
                    text = read_text(self.root, real)
                except FileRefused as exc:
                    if not os.path.lexists(path) and not hidden:
                        raise jinja2.TemplateNotFound(template) from None
                    raise TemplateProblem(
                        f"template {template!r} refused: {exc}", name=template
                    ) from None
        if path is None:
            path = BUILTIN_TEMPLATES.joinpath(*pieces)
            if not os.path.lexists(path):
                raise jinja2.TemplateNotFound(template)
            try:
                text = read_text(BUILTIN_TEMPLATES, path)
            except FileRefused as exc:
                raise TemplateProblem(f"template {template!r} refused: {exc}") from None
        found: Path = path
        mtime = os.path.getmtime(found)

        def uptodate() -> bool:
            try:
                return os.path.getmtime(found) == mtime
            except OSError:
                return False

        return text, str(found), uptodate


def _environment(root: Path | None, layers_dir: str) -> jinja2.Environment:
    # Sandboxed: specs come from pull requests and `bakery validate` runs them in a
    # pre-commit hook, so a template must not reach Python internals.
    return LimitedSandbox(
        loader=_ProjectLoader(root, layers_dir) if root else None,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )


_ENVS: dict[tuple[Path | None, str], jinja2.Environment] = {}


def environment(root: Path | None, layers_dir: str = "layers") -> jinja2.Environment:
    if (root, layers_dir) not in _ENVS:
        _ENVS[root, layers_dir] = _environment(root, layers_dir)
    return _ENVS[root, layers_dir]


def render(
    root: Path,
    source: str,
    *,
    is_file: bool,
    context: dict[str, Any],
    resolve: Callable[[str], str],
    layers_dir: str = "layers",
) -> Rendered:
    """Render a template; `resolve` maps a table ref to its qualified Glue name (or raises).

    A problem is a TemplateProblem at the line it is on: in the template file, or in the
    file it includes (no file: inline SQL or a built-in, reported where the YAML names it).
    """
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

    env = environment(root, layers_dir)
    top: str | None = None  # the project file rendered (None: inline SQL or a built-in)

    def at(exc: BaseException) -> tuple[str | None, int]:
        """The project file and line a template exception points at (Jinja rewrites
        tracebacks into template frames); the top template and no line if none."""
        found = _template_frame(exc)
        if found is None:
            return top, 0
        filename, line = found
        if filename == "<template>":
            return None, line
        return _project_name(root, filename), line

    try:
        try:
            template = env.get_template(source) if is_file else env.from_string(source)
        except RecursionError:
            raise RenderLimit("the template nests too deeply; write it flatter") from None
        top = _project_name(root, template.filename) if is_file and template.filename else None
        functions = {"ref": ref, "param": param, "bng_to_wgs84": bng_to_wgs84}
        text = render_capped(template, {**context, **functions})
    except jinja2.TemplateSyntaxError as exc:
        known = exc.filename not in (None, "<template>")
        file = _project_name(root, exc.filename) if known else None  # type: ignore[arg-type]
        raise TemplateProblem(f"template syntax error: {exc.message}", file, exc.lineno) from None
    except RenderLimit as exc:
        raise TemplateProblem(f"template refused: {exc}", *at(exc)) from None
    except TemplateProblem as exc:  # the loader refused an included file
        if exc.line:
            raise
        file, line = at(exc)
        col = _column(_source(env, file), line, exc.name) if file else 0
        raise TemplateProblem(exc.message, file, line, col) from None
    except jinja2.UndefinedError as exc:
        file, line = at(exc)
        body = _source(env, file) if file else source if not is_file else ""
        col = _column(body, line, _undefined_name(exc))
        raise TemplateProblem(undefined_message(exc, body, context), file, line, col) from None
    except jinja2.TemplateNotFound as exc:
        file, line = at(exc)
        missing = str(exc.name)
        if missing == source or not line:
            raise TemplateProblem(f"template {missing!r} not found", file, line) from None
        where = "" if file else f" (line {line})"
        folder = os.path.normpath(layers_dir)
        raise TemplateProblem(
            f"included template {missing!r} not found{where}: an included file is one under "
            f"{folder}/, named from the project folder, e.g. '{folder}/queries/part.sql'",
            file,
            line,
            _column(_source(env, file), line, missing) if file else 0,
        ) from None
    except LookupError as exc:
        raise TemplateProblem(str(exc.args[0]) if exc.args else str(exc), *at(exc)) from None
    except jinja2.TemplateError as exc:
        raise TemplateProblem(f"template error: {exc}", *at(exc)) from None
    out.sql = text[: _statement_end(text, top)].strip()
    return out


def _project_name(root: Path, filename: str) -> str | None:
    """A template file's name relative to the project; None for a built-in."""
    path = Path(filename)
    base = root.absolute()
    return path.relative_to(base).as_posix() if path.is_relative_to(base) else None


def _template_frame(exc: BaseException) -> tuple[str, int] | None:
    """The innermost template frame of an exception's traceback: (filename, line).
    Jinja's rewritten frames run code named 'top-level template code', 'template' or
    "block 'x'"; any other frame is Python."""
    import traceback

    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        name = frame.name
        in_template = name in ("top-level template code", "template") or name.startswith("block ")
        if in_template and frame.lineno:
            found = (frame.filename, frame.lineno)
    return found


def _source(env: jinja2.Environment, name: str) -> str:
    try:
        return env.loader.get_source(env, name)[0] if env.loader else ""
    except (jinja2.TemplateError, BakeryError):
        return ""


# A ';' ends a statement unless it is inside a string, a quoted name or a comment.
_SQL_PIECES = re.compile(
    r"'(?:[^']|'')*'?|\"(?:[^\"]|\"\")*\"?|`[^`]*`?|--[^\n]*|/\*.*?(?:\*/|\Z)|;|\s+|[^'\"`;\s]+",
    re.DOTALL,
)


def _statement_end(sql: str, file: str | None) -> int:
    """Where the one statement of a query ends: at its first ';' (what follows may only be
    blanks, comments and more ';'), else the end. A second statement (`SELECT ...; DROP
    TABLE x`) is refused: only the first would be checked, and Athena runs one."""
    if ";" not in sql:
        return len(sql)
    end = None
    for m in _SQL_PIECES.finditer(sql):
        piece = m.group()
        if piece == ";":
            end = m.start() if end is None else end
        elif end is not None and not (piece.isspace() or piece.startswith(("--", "/*"))):
            line = sql.count("\n", 0, m.start()) + 1
            col = m.start() - (sql.rfind("\n", 0, m.start()) + 1) + 1
            where = "" if file else f" (line {line}, col {col})"
            raise TemplateProblem(
                f"a second SQL statement after ';'{where}: a query template holds one "
                "statement (Athena runs one per query); remove it, or give it a step of its own",
                file,
                line,
                col,
            )
    return len(sql) if end is None else end


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


def _column(text: str, line: int, name: str | None) -> int:
    """Column of `name` on a line of `text` (1 when not found; 0 with no line)."""
    lines = text.splitlines()
    if not line or not name or line > len(lines):
        return 1 if line else 0
    found = lines[line - 1].find(name)
    return found + 1 if found >= 0 else 1


def render_text(text: str, context: dict[str, Any]) -> str:
    """Render a one-line template such as a location; raises jinja2.TemplateError."""
    try:
        template = environment(None).from_string(text)
    except RecursionError:
        raise RenderLimit("the template nests too deeply; write it flatter") from None
    return render_capped(template, context).strip()


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
