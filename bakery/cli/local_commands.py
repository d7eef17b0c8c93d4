"""bake, sample-data, lookup: layers baked on this machine (DuckDB) against a local store.

duckdb, pyarrow and the engine are imported inside the commands, so `bakery validate`
stays fast.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from bakery.cli.common import EXIT_FAILED, EnvOption, JsonOption, app, load_plan, usage_error

StoreOption = Annotated[
    Path | None,
    typer.Option(
        "--store",
        help="Folder standing in for S3: s3://BUCKET/KEY is STORE/BUCKET/KEY "
        "($BAKERY_STORE, default .bakery/store).",
        show_default=False,
    ),
]
EndpointOption = Annotated[
    str | None,
    typer.Option(
        "--s3-endpoint",
        help="Bake against this S3-compatible API (e.g. http://127.0.0.1:9000) instead of "
        "a folder ($BAKERY_S3_ENDPOINT).",
    ),
]


def _console(stderr: bool = True):
    """A rich console; wide enough for the tables when output is not a terminal."""
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal:
        console = Console(stderr=stderr, highlight=False, width=160)
    return console


def _store(store: Path | None, endpoint: str | None, plan: Any = None):
    """--s3-endpoint, else --store, else $BAKERY_STORE, else .bakery/store in the project."""
    from bakery.store import DEFAULT_STORE, open_store

    if store is None and not os.environ.get("BAKERY_STORE") and plan is not None:
        store = Path(plan.root) / DEFAULT_STORE
    return open_store(store, endpoint)


class _RichReporter:
    """Progress on stderr: a spinner per running step, one line per finished step."""

    def __init__(self, quiet: bool = False):
        self.console = _console()
        self.quiet = quiet
        self.status: Any = None

    def layer(self, layer: Any) -> None:
        self.console.print(f"[bold cyan]layer {layer.name}[/]")

    def start(self, step: Any) -> None:
        if self.console.is_terminal:
            self.status = self.console.status(f"  {step.id} ({step.kind}) ...")
            self.status.start()

    def _stop(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None

    def done(self, result: Any) -> None:
        self._stop()
        mark = "[green]ok[/]" if result.ok else "[red]FAILED[/]"
        parts = [f"  {mark} {result.id} [dim]({result.kind})[/] {result.seconds:.2f}s"]
        if result.rows is not None:
            parts.append(f"{result.rows:,} rows")
        if result.files:
            parts.append(f"{result.files:,} files")
        if result.note and result.ok:
            parts.append(f"[dim]{result.note}[/]")
        self.console.print("  ".join(parts))

    def note(self, text: str) -> None:
        self._stop()
        self.console.print(f"  [dim]{text}[/]")


def _summary(result: Any) -> None:
    from rich.table import Table

    console = _console()
    steps = Table("layer", "step", "kind", "rows", "files", "seconds", box=None, title="steps")
    for st in result.steps:
        steps.add_row(
            st.layer,
            st.id,
            st.kind,
            "" if st.rows is None else f"{st.rows:,}",
            "" if not st.files else f"{st.files:,}",
            f"{st.seconds:.2f}",
        )
    console.print(steps)
    if result.tables:
        tables = Table("table", "rows", "files", "location", box=None, title="published tables")
        for ref, info in result.tables.items():
            tables.add_row(ref, f"{info['rows']:,}", f"{info['files']:,}", info["location"])
        console.print(tables)
    verdict = "[green]baked[/]" if result.ok else "[red]failed[/]"
    console.print(
        f"{verdict} {', '.join(result.layers)} in {result.seconds:.1f}s (store {result.store})"
    )


@app.command()
def bake(
    layers: Annotated[list[str], typer.Argument(help="Layers to bake.", show_default=False)],
    env: EnvOption = "development",
    store: StoreOption = None,
    s3_endpoint: EndpointOption = None,
    with_upstream: Annotated[
        bool, typer.Option("--with-upstream", help="Bake the layers these depend on first.")
    ] = False,
    sample: Annotated[
        bool,
        typer.Option("--sample", help="Seed sample data first when the store lacks inputs."),
    ] = False,
    ee_dsn: Annotated[
        str | None,
        typer.Option(
            "--ee-dsn",
            envvar="BAKERY_EE_DSN",
            help="EveryElection Postgres DSN for the ballots export ($BAKERY_EE_DSN); "
            "without it the ballots CSV already in the store is used.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Bake layers locally on DuckDB against a folder standing in for S3 (or an S3 endpoint).

    Every table a layer writes is staged and published only when all its checks pass;
    a failed or killed bake leaves published data as it was. Exit 0 ok, 1 when a step
    or check fails, 2 on usage errors.
    """
    plan = load_plan(env)
    names = [ly.name for ly in plan.layers]
    for name in layers:
        if name not in names:
            import difflib

            close = difflib.get_close_matches(name, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; layers: {', '.join(names)}"
            usage_error(f"unknown layer {name!r}{hint}")
    logging.basicConfig(level=logging.WARNING, format="  warning: %(message)s", stream=sys.stderr)
    from bakery.engine import BakeError
    from bakery.engine import bake as run_bake

    target = _store(store, s3_endpoint, plan)
    reporter = _RichReporter()
    if sample:
        from bakery import sample_data

        missing = sample_data.missing_inputs(plan, target)
        if missing:
            t0 = time.perf_counter()
            summary = sample_data.write_sample_data(plan, target, only=missing)
            reporter.note(
                f"seeded sample data for {', '.join(missing)} in {time.perf_counter() - t0:.1f}s: "
                f"{', '.join(summary.files)}"
            )
    try:
        result = run_bake(
            plan,
            layers,
            target,
            with_upstream=with_upstream,
            reporter=reporter,
            ee_dsn=ee_dsn,
            s3_endpoint=s3_endpoint or os.environ.get("BAKERY_S3_ENDPOINT"),
        )
    except BakeError as exc:
        if exc.result is not None:
            if as_json:
                print(json.dumps(exc.result.to_dict(), indent=2))
            else:
                _summary(exc.result)
        print(f"bakery: error: {exc}", file=sys.stderr)
        raise typer.Exit(EXIT_FAILED) from None
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        _summary(result)


@app.command("sample-data")
def sample_data_command(
    addresses: Annotated[int, typer.Option("--addresses", min=1, help="Addresses.")] = 50_000,
    ballots: Annotated[int, typer.Option("--ballots", min=2, help="Ballots.")] = 300,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same data).")] = 1,
    store: StoreOption = None,
    s3_endpoint: EndpointOption = None,
    env: EnvOption = "development",
) -> None:
    """Write deterministic synthetic AddressBase and ballots CSVs at their real locations."""
    from bakery import sample_data

    plan = load_plan(env)
    target = _store(store, s3_endpoint, plan)
    t0 = time.perf_counter()
    summary = sample_data.write_sample_data(
        plan, target, addresses=addresses, ballots=ballots, seed=seed
    )
    print(
        f"wrote {summary.addresses:,} addresses ({summary.outcodes:,} outcodes) and "
        f"{summary.ballots:,} ballots ({summary.polygon_rows:,} polygon rows) "
        f"in {time.perf_counter() - t0:.1f}s",
        file=sys.stderr,
    )
    for uri in summary.files:
        print(f"  {uri}", file=sys.stderr)


def normalise_postcode(text: str) -> str:
    """'sw1a1aa' / ' SW1A  1AA ' -> 'SW1A 1AA' (upper case, one space before the inward code)."""
    squashed = "".join(text.split()).upper()
    if len(squashed) < 5:
        return squashed
    return f"{squashed[:-3]} {squashed[-3:]}"


def _export_step(plan: Any) -> Any:
    for layer in plan.layers:
        for step in layer.walk():
            if step.kind == "export_by_key" and step.spec.key == "outcode":
                return step
    return None


@app.command()
def lookup(
    postcode: Annotated[str, typer.Argument(help="A postcode, any case and spacing.")],
    env: EnvOption = "development",
    store: StoreOption = None,
    s3_endpoint: EndpointOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print the addresses at a postcode and their ballots, read from the per-outcode file
    the way the APIs read it."""
    import io

    import pyarrow.parquet as pq

    plan = load_plan(env)
    step = _export_step(plan)
    if step is None:
        usage_error("no layer exports per-outcode files (export_by_key with key: outcode)")
    normal = normalise_postcode(postcode)
    if " " not in normal:
        usage_error(f"{postcode!r} does not look like a postcode")
    outcode = normal.split(" ")[0]
    target = _store(store, s3_endpoint, plan)
    uri = f"{step.location}{outcode}.parquet"
    out: dict[str, Any] = {"postcode": normal, "outcode": outcode, "file": uri}
    if not target.exists(uri):
        out.update(status="unknown outcode", addresses=[])
        message = f"{normal}: unknown outcode {outcode} (no file {uri})"
    else:
        table = pq.read_table(io.BytesIO(target.read_bytes(uri)))
        if table.num_columns == 0:
            out.update(status="no elections", addresses=[])
            message = f"{normal}: no elections in outcode {outcode}"
        else:
            rows = [r for r in table.to_pylist() if r.get("postcode") == normal]
            out.update(
                status="ok" if rows else "unknown postcode",
                addresses=[
                    {
                        "uprn": r.get("uprn"),
                        "address": r.get("address"),
                        "ballot_ids": list(r.get("ballot_ids") or []),
                    }
                    for r in rows
                ],
            )
            message = (
                f"{normal}: {len(rows)} address{'es' if len(rows) != 1 else ''}"
                if rows
                else f"{normal}: no address with this postcode in outcode {outcode}"
            )
    if as_json:
        print(json.dumps(out, indent=2))
        return
    from rich.table import Table

    console = _console(stderr=False)
    console.print(message)
    if out["addresses"]:
        table_out = Table("uprn", "address", "ballots", box=None)
        for a in out["addresses"]:
            table_out.add_row(a["uprn"], a["address"], ", ".join(a["ballot_ids"]) or "(none)")
        console.print(table_out)
