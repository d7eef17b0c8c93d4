"""Layer tests in YAML, run on DuckDB: given a few rows per input table, expect the rows
of a table a step writes.

A test file is `<layers_dir>/tests/<anything>.yaml`:

    layer: wards
    tests:
      - name: home_on_a_ward_boundary
        given:                               # rows per table the layer reads
          homes: [{uprn: "1", postcode: AB1 2CD, longitude: 1, latitude: 1}]
          ward_polygons: {file: cases/two_wards.csv}   # or a CSV/Parquet file
        expect:                              # rows of a table a step writes
          homes_in_wards:
            - {uprn: "1", ward_ids: [east, north]}    # only the columns named are compared
          # or {rows: [...], ordered_by: [uprn]} to compare in that order

The layer's query steps (purge_prefix, athena_query, geo_join, for_each) run in the
real local engine against a throwaway store; checks, Lambdas and exports do not. Every
table the layer reads that a test does not give is empty. Rows compare as a multiset
unless `ordered_by` is given.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from bakery import spec as s
from bakery.errors import Problem, SpecError
from bakery.loader import Document, load_yaml
from bakery.project_files import FileRefused, under_layers
from bakery.workspace import display_path, validate_model

TESTS_DIR = "tests"
RUN_KINDS = ("purge_prefix", "athena_query", "geo_join", "for_each", "refresh_partitions")
Row = dict[str, Any]


class Rows(s.Strict):
    rows: list[Row] | None = Field(None, description="Rows as mappings of column -> value.")
    file: str | None = Field(
        None,
        description=(
            "Or a CSV (with a header) or Parquet file, relative to this file; it must be "
            "under the layers folder, with no hidden name."
        ),
    )


class Expected(Rows):
    ordered_by: list[s.Identifier] = Field(
        default_factory=list,
        description="Compare in this order (the actual rows sorted by these columns).",
    )


class Case(s.Strict):
    name: Annotated[str, Field(pattern=s.IDENTIFIER_PATTERN, max_length=100)]
    description: str | None = None
    given: dict[s.TableRef, list[Row] | Rows] = Field(default_factory=dict)
    expect: dict[s.TableRef, list[Row] | Expected] = Field(min_length=1)


class TestFile(s.Strict):
    """A file of layer tests under <layers_dir>/tests/."""

    layer: s.Identifier
    tests: list[Case] = Field(min_length=1)


@dataclass
class LayerTest:
    layer: str
    name: str
    file: str  # project-relative
    line: int
    case: Case
    doc: Document
    index: int
    path: Path

    @property
    def id(self) -> str:
        return f"{self.layer}::{self.name}"


@dataclass
class Mismatch:
    table: str
    columns: list[str]
    missing: list[tuple] = field(default_factory=list)  # expected, not found
    unexpected: list[tuple] = field(default_factory=list)  # found, not expected
    ordered: bool = False
    expected: list[tuple] = field(default_factory=list)
    actual: list[tuple] = field(default_factory=list)


@dataclass
class Outcome:
    test: LayerTest
    ok: bool
    seconds: float
    mismatches: list[Mismatch] = field(default_factory=list)
    error: str | None = None


def data_file(plan: Any, test: LayerTest, name: str) -> Path:
    """The real path of the CSV or Parquet file a test names (relative to its test file),
    or FileRefused: like a template, it is a regular file under the layers folder with no
    hidden name (project_files.under_layers), so a test cannot print another file's rows."""
    real = under_layers(plan.root, plan.project.layers_dir, test.path.parent / name)
    if real.suffix.lower() not in (".csv", ".parquet"):
        raise FileRefused("it is not a .csv or .parquet file")
    if not real.is_file():
        raise FileRefused("it is not a regular file")
    return real


def test_paths(root: Path, layers_dir: str) -> list[Path]:
    return sorted((root / layers_dir / TESTS_DIR).glob("*.yaml"))


def discover(root: Path, layers_dir: str, layers: list[str] | None = None) -> list[LayerTest]:
    """Every test in the project's test files (of `layers` when given); SpecError lists
    every file problem."""
    out: list[LayerTest] = []
    problems: list[Problem] = []
    for path in test_paths(root, layers_dir):
        try:
            doc = load_yaml(path, display_path(root, path))
        except SpecError as exc:
            problems.extend(exc.problems)
            continue
        spec, found = validate_model(TestFile, doc)
        problems.extend(found)
        if spec is None:
            continue
        names: set[str] = set()
        for i, case in enumerate(spec.tests):
            if case.name in names:
                problems.append(doc.problem(("tests", i, "name"), f"test {case.name!r} twice"))
            names.add(case.name)
            if layers is None or spec.layer in layers:
                line = doc.where(("tests", i))[0]
                out.append(LayerTest(spec.layer, case.name, doc.file, line, case, doc, i, path))
    if problems:
        raise SpecError(problems)
    return out


def check(plan: Any, tests: list[LayerTest]) -> None:
    """Tables, columns and files of every test resolve against the plan; SpecError if not."""
    problems: list[Problem] = []
    names = [ly.name for ly in plan.layers]
    for t in tests:
        at = ("tests", t.index)
        if t.layer not in names:
            problems.append(t.doc.problem(("layer",), f"unknown layer {t.layer!r}"))
            continue
        layer = plan.layer(t.layer)
        reads = _reads(plan, layer)
        writes = {ref for st in _kept(layer) for sub in [st, *st.children] for ref in sub.writes}
        for key, refs, what in (
            ("given", reads, "a table the layer reads"),
            ("expect", writes, "a table a query step of the layer writes"),
        ):
            for ref, value in getattr(t.case, key).items():
                where = at + (key, ref)
                full = _resolve(plan, t.layer, ref)
                if full not in refs:
                    known = ", ".join(sorted(refs)) or "none"
                    problems.append(t.doc.problem(where, f"{ref!r} is not {what} ({known})"))
                    continue
                cols = [c.name for c in plan.table(full).all_columns]
                for j, row in enumerate(_rows_of(value) or []):
                    for col in row:
                        if col not in cols:
                            problems.append(
                                t.doc.problem(
                                    where + ((j,) if isinstance(value, list) else ("rows", j)),
                                    f"table {full!r} has no column {col!r} "
                                    f"(columns: {', '.join(cols)})",
                                )
                            )
                if isinstance(value, Expected):
                    for col in value.ordered_by:
                        if col not in cols:
                            problems.append(
                                t.doc.problem(where + ("ordered_by",), f"no column {col!r}")
                            )
                if isinstance(value, Rows) and (value.rows is None) == (value.file is None):
                    problems.append(t.doc.problem(where, "give exactly one of 'rows' or 'file'"))
                elif isinstance(value, Rows) and value.file is not None:
                    try:
                        data_file(plan, t, value.file)
                    except FileRefused as exc:
                        problems.append(
                            t.doc.problem(where + ("file",), f"file {value.file!r} refused: {exc}")
                        )
    if problems:
        raise SpecError(problems)


def _resolve(plan: Any, layer: str, ref: str) -> str:
    return ref if "." in ref else f"{layer}.{ref}"


def _rows_of(value: Any) -> list[Row] | None:
    return value if isinstance(value, list) else value.rows


def _kept(layer: Any) -> list[Any]:
    return [st for st in layer.steps if st.kind in RUN_KINDS]


def _reads(plan: Any, layer: Any) -> set[str]:
    written = {ref for st in _kept(layer) for sub in [st, *st.children] for ref in sub.writes}
    reads = {ref for st in _kept(layer) for sub in [st, *st.children] for ref in sub.reads}
    return reads - written


def run(plan: Any, test: LayerTest, con: Any = None) -> Outcome:
    """Run one test in a throwaway store; never raises for a failing test.

    con: a DuckDB connection (bakery.engine.duck.connect) shared by many tests, so each
    does not pay for loading the spatial extension; the caller closes it."""
    import time

    from bakery.engine import BakeError, bake, duck, tables
    from bakery.store import LocalStore

    t0 = time.perf_counter()
    layer = plan.layer(test.layer)
    only = dataclasses.replace(layer, steps=_kept(layer))
    scoped = dataclasses.replace(
        plan, layers=[only if ly.name == layer.name else ly for ly in plan.layers]
    )
    with tempfile.TemporaryDirectory(prefix="bakery-test-") as tmp:
        store = LocalStore(Path(tmp) / "store")
        own = con is None
        con = duck.connect() if own else con
        try:
            given = {_resolve(plan, test.layer, k): v for k, v in test.case.given.items()}
            for ref in sorted(_reads(plan, layer)):
                table = plan.table(ref)
                select = _select(con, table, given.get(ref), plan, test, Path(tmp))
                Path(store.duck_path(table.location)).mkdir(parents=True, exist_ok=True)
                tables.copy_into(con, table, store, table.location, select)
            try:
                bake(scoped, [layer.name], store, con=con)
            except BakeError as exc:
                return Outcome(test, False, time.perf_counter() - t0, error=str(exc))
            mismatches = []
            for ref, value in test.case.expect.items():
                full = _resolve(plan, test.layer, ref)
                found = _compare(con, plan.table(full), value, store, plan, test, tmp)
                if found is not None:
                    mismatches.append(found)
        except Exception as exc:  # bad rows for a type, unreadable files: one line
            text = str(exc).strip().splitlines()
            return Outcome(
                test, False, time.perf_counter() - t0, error=text[0] if text else repr(exc)
            )
        finally:
            if own:
                con.close()
    return Outcome(test, not mismatches, time.perf_counter() - t0, mismatches)


def _select(con: Any, table: Any, value: Any, plan: Any, test: LayerTest, tmp: Path) -> str:
    """A DuckDB SELECT of the given rows of a table (none when value is None)."""
    from bakery.engine.duck import duck_type, ident, quote
    from bakery.sample_data import read_sql

    cols = table.all_columns
    if value is None:
        nulls = ", ".join(f"CAST(NULL AS {duck_type(c.type)}) AS {ident(c.name)}" for c in cols)
        return f"SELECT {nulls} WHERE false"
    rows = _rows_of(value)
    if rows is None:
        return read_sql(data_file(plan, test, value.file))
    path = tmp / f"rows-{table.name}-{id(rows)}.jsonl"
    path.write_text("".join(json.dumps(r, default=str) + "\n" for r in rows) or "")
    spec = ", ".join(f"{quote(c.name)}: {quote(duck_type(c.type))}" for c in cols)
    if not rows:
        nulls = ", ".join(f"CAST(NULL AS {duck_type(c.type)}) AS {ident(c.name)}" for c in cols)
        return f"SELECT {nulls} WHERE false"
    return (
        f"SELECT * FROM read_json({quote(str(path))}, format='newline_delimited', "
        f"columns={{{spec}}})"
    )


def _canonical(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, list | tuple):
        return tuple(_canonical(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _canonical(v)) for k, v in value.items()))
    return value


def _compare(
    con: Any, table: Any, value: Any, store: Any, plan: Any, test: LayerTest, tmp: str
) -> Mismatch | None:
    from collections import Counter

    from bakery.engine.duck import ident
    from bakery.engine.tables import source_sql

    rows = _rows_of(value)
    if rows is None:
        expected_sql = _select(con, table, value, plan, test, Path(tmp))
        columns = [c.name for c in table.all_columns]
    else:
        columns = [c.name for c in table.all_columns if any(c.name in r for r in rows)]
        expected_sql = _select(con, table, value, plan, test, Path(tmp))
    picked = ", ".join(ident(c) for c in columns) or "*"
    expected = [
        tuple(_canonical(v) for v in r)
        for r in con.execute(f"SELECT {picked} FROM ({expected_sql})").fetchall()
    ]
    order = getattr(value, "ordered_by", None) or []
    by = " ORDER BY " + ", ".join(ident(c) for c in order) if order else ""
    actual_sql = f"SELECT {picked} FROM ({source_sql(table, store, table.location)}){by}"
    actual = [tuple(_canonical(v) for v in r) for r in con.execute(actual_sql).fetchall()]
    if order:
        if expected == actual:
            return None
        return Mismatch(table.ref, columns, ordered=True, expected=expected, actual=actual)
    want, got = Counter(expected), Counter(actual)
    if want == got:
        return None
    return Mismatch(
        table.ref,
        columns,
        missing=sorted((want - got).elements(), key=repr),
        unexpected=sorted((got - want).elements(), key=repr),
        expected=expected,
        actual=actual,
    )


def _show(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def _grid(columns: list[str], marked: list[tuple[str, tuple]]) -> list[str]:
    cells = [[_show(v) for v in row] for _, row in marked]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["    " + "  " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    for (mark, _), row in zip(marked, cells, strict=True):
        text = " | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True))
        lines.append(f"    {mark} {text}".rstrip())
    return lines


def explain(outcome: Outcome) -> list[str]:
    """The readable diff of a failed test: `-` expected rows not found, `+` rows found
    that were not expected (or both lists in order, for an ordered comparison)."""
    if outcome.ok:
        return []
    if outcome.error:
        return [f"  error: {outcome.error}"]
    lines = []
    for m in outcome.mismatches:
        if m.ordered:
            lines.append(f"  {m.table}: rows differ in order or content (- expected, + actual)")
            marked = [("-", r) for r in m.expected] + [("+", r) for r in m.actual]
        else:
            lines.append(
                f"  {m.table}: {len(m.missing)} expected row(s) not found (-), "
                f"{len(m.unexpected)} row(s) not expected (+); {len(m.actual)} row(s) in all"
            )
            marked = [("-", r) for r in m.missing] + [("+", r) for r in m.unexpected]
        lines.extend(_grid(m.columns, marked))
    return lines
