"""Sample rows for local bakes: seeding a store with each table's declared sample.

`bakery sample-data` and `bakery bake --sample` write them at the table's location in
the store, in the table's format. Where they come from (a file, or a generator of the
registry) is declared in the layer file and checked at plan time: bakery.planning.samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bakery.planning.samples import (
    GENERATORS,
    SAMPLE_SUFFIXES,
    SampleError,
    SampleFiles,
    SampleRequest,
    generator,
    sample_file_problem,
)

if TYPE_CHECKING:
    from bakery.planning.model import Plan, TablePlan
    from bakery.store import Store

# The registry's names, where the engine's callers and the generators find them.
__all__ = [
    "GENERATORS",
    "SAMPLE_SUFFIXES",
    "SampleError",
    "SampleFiles",
    "SampleRequest",
    "generator",
    "sample_file_problem",
]


@dataclass
class Seeded:
    ref: str
    source: str  # "generator addressbase" or "file layers/samples/x.csv"
    files: list[str]
    rows: int
    summary: str
    stats: dict[str, int] = field(default_factory=dict)


def inputs(plan: Plan, layers: list[str] | None = None) -> list[TablePlan]:
    """The input tables of these layers (all by default): every table they read or declare
    that no query or geo_join writes (external, or written by a Lambda such as an export),
    plus any of theirs that declares a sample."""
    chosen = [ly for ly in plan.layers if layers is None or ly.name in layers]
    refs: dict[str, None] = {}
    for layer in chosen:
        for step in layer.walk():
            refs.update(dict.fromkeys(step.reads))
        refs.update(dict.fromkeys(t.ref for t in layer.tables))
    out = []
    for ref in refs:
        table = plan.table(ref)
        if table.sample is not None or _written_only_outside_sql(plan, table):
            out.append(table)
    return out


def _written_only_outside_sql(plan: Plan, table: TablePlan) -> bool:
    layer = plan.layer(table.layer)
    kinds = {s.kind for s in layer.walk() if s.id in table.written_by}
    return not (kinds & {"athena_query", "geo_join"})


def missing(plan: Plan, store: Store, layers: list[str] | None = None) -> list[TablePlan]:
    """Inputs of these layers with no files in the store."""
    return [t for t in inputs(plan, layers) if not store.list(t.location)]


def no_sample_hint(table: TablePlan) -> str:
    """What to add to the YAML so `--sample` can seed this table."""
    header = ",".join(c.name for c in table.all_columns)
    return (
        f"{table.declared_at}: table {table.ref} declares no sample; add to its glue_table "
        f"step `sample: {{file: samples/{table.name}.csv}}` (a CSV with header {header}, "
        f"next to the layer file) or `sample: {{generator: NAME}}` "
        f"(registered: {', '.join(GENERATORS)})"
    )


def how_to_seed(table: TablePlan) -> str:
    """The end of a "has no files" message: how to get sample rows there."""
    if table.sample is not None:
        return "seed sample data with `bakery sample-data` (or bake with --sample)"
    return "declare sample rows for it: " + no_sample_hint(table)


def seed_tables(
    plan: Plan,
    store: Store,
    tables: list[TablePlan],
    *,
    rows: dict[str, int] | None = None,
    seed: int = 1,
    s3_endpoint: str | None = None,
) -> list[Seeded]:
    """Replace what is at each table's location with its sample.

    rows: sizes by generator name or table ref (overrides the YAML's `rows`). Raises
    SampleError, before writing anything, when a table declares no sample.
    """
    rows = dict(rows or {})
    for table in tables:  # the YAML's sizes, unless overridden
        if table.sample and table.sample.generator and table.sample.rows:
            rows.setdefault(table.sample.generator, table.sample.rows)
    unseedable = [t for t in tables if t.sample is None]
    if unseedable:
        raise SampleError(no_sample_hint(unseedable[0]))
    out = []
    for table in tables:
        sample = table.sample
        assert sample is not None
        if sample.generator:
            size = rows.get(table.ref, rows.get(sample.generator, sample.rows))
            made = generator(sample.generator)(SampleRequest(plan, table, size, seed, rows))
            store.delete_prefix(table.location)
            uris = []
            for name, data in made.files.items():
                store.write_bytes(table.location + name, data)
                uris.append(table.location + name)
            out.append(
                Seeded(
                    table.ref,
                    f"generator {sample.generator}",
                    uris,
                    made.rows,
                    made.summary,
                    made.stats,
                )  # fmt: skip
            )
        else:
            assert table.sample_file is not None
            store.delete_prefix(table.location)
            count = load_file(plan.root / table.sample_file, table, store, s3_endpoint)
            out.append(
                Seeded(
                    table.ref,
                    f"file {table.sample_file}",
                    store.list(table.location),
                    count,
                    f"{count:,} rows from {table.sample_file}",
                )  # fmt: skip
            )
    return out


def read_sql(path: Path) -> str:
    """A DuckDB SELECT over a sample file: CSV with a header (every value text, an empty
    field NULL, cast to the table's types when written) or Parquet."""
    from bakery.engine.duck import quote

    if path.suffix.lower() == ".parquet":
        return f"SELECT * FROM read_parquet({quote(str(path))})"
    return f"SELECT * FROM read_csv({quote(str(path))}, header=true, all_varchar=true)"


def load_file(path: Path, table: TablePlan, store: Store, s3_endpoint: str | None = None) -> int:
    """Write the rows of a sample file at the table's location, in its format."""
    from bakery.engine import duck
    from bakery.engine.tables import copy_into

    problem = sample_file_problem(path, path.name)  # it may have changed since validate
    if problem:
        raise SampleError(f"{table.declared_at}: {problem}")
    con = duck.connect(s3_endpoint=s3_endpoint)
    try:
        if store.is_local:  # DuckDB's partitioned COPY wants the folder to exist
            Path(store.duck_path(table.location)).mkdir(parents=True, exist_ok=True)
        return copy_into(con, table, store, table.location, read_sql(path))
    except Exception as exc:  # duckdb conversion and I/O errors: one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SampleError(f"{table.declared_at}: sample file {path.name}: {first}") from None
    finally:
        con.close()


# ---------------------------------------------------------------- Democracy Club's inputs
# Kept for the tests and benchmarks that size AddressBase and the ballots directly.


@dataclass
class SampleSummary:
    addresses: int
    ballots: int
    polygon_rows: int
    outcodes: int
    files: list[str]
    seeded: list[Seeded] = field(default_factory=list)


def write_sample_data(
    plan: Plan,
    store: Store,
    *,
    addresses: int = 50_000,
    ballots: int = 300,
    seed: int = 1,
    only: list[str] | None = None,
    reviews: int | None = None,
) -> SampleSummary:
    """Seed every table of the plan that declares a sample (or the refs in `only`)."""
    tables = [t for t in plan.tables.values() if t.sample is not None]
    if only is not None:
        tables = [t for t in tables if t.ref in only]
    sizes = {"addressbase": addresses, "ballots": ballots}
    if reviews is not None:
        sizes["boundary_reviews"] = reviews
    done = seed_tables(plan, store, tables, rows=sizes, seed=seed)
    stats: dict[str, int] = {}
    for item in done:
        for key, value in item.stats.items():
            stats[key] = stats.get(key, 0) + value
    return SampleSummary(
        addresses=stats.get("addresses", 0),
        ballots=stats.get("ballots", 0),
        polygon_rows=stats.get("polygon_rows", 0),
        outcodes=stats.get("outcodes", 0),
        files=[f for item in done for f in item.files],
        seeded=done,
    )
