"""bake, sample-data: layers baked on this machine (DuckDB) against a local store.

duckdb, pyarrow and the engine are imported inside the commands, so `bakery validate`
stays fast.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Annotated, Any

import typer

from bakery.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    EeDsnOption,
    EnvOption,
    JsonOption,
    SampleOption,
    app,
    end_process_after_command,
    load_plan,
    unknown_layer,
    usage_error,
)
from bakery.cli.local_options import (
    EndpointOption,
    SampleEndpointOption,
    StoreOption,
    engine_settings,
    fail,
    open_store,
    s3_errors,
)
from bakery.cli.progress import RichReporter, report_interrupted, summary
from bakery.cli.signals import exit_interrupted, sigterm_as_ctrl_c


@app.command()
def bake(
    layers: Annotated[list[str], typer.Argument(help="Layers to bake.", show_default=False)],
    env: EnvOption = "development",
    store: StoreOption = None,
    s3_endpoint: EndpointOption = None,
    with_upstream: Annotated[
        bool, typer.Option("--with-upstream", help="Bake the layers these depend on first.")
    ] = False,
    sample: SampleOption = False,
    ee_dsn: EeDsnOption = None,
    as_json: JsonOption = False,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="duckdb, or trino: Athena's own engine for the steps Athena runs "
            "(`bakery engine install trino` first; docs/trino.md).",
        ),
    ] = "duckdb",
) -> None:
    """Bake layers locally on DuckDB against a folder standing in for S3 (or an S3 endpoint).

    Every table a layer writes is staged and published only when all its checks pass;
    a failed or killed bake leaves published data as it was. Exit 0 ok, 1 when a step
    or check fails, 2 on usage errors.
    """
    end_process_after_command()
    plan = load_plan(env)
    if message := unknown_layer(plan, layers):
        fail(as_json, message, EXIT_USAGE)
    threads, memory_limit = engine_settings(as_json)
    if engine == "trino":
        from bakery.cli.engine_commands import ready_or_exit

        ready_or_exit(as_json)
        from bakery.trino.steps import session as trino_session
    elif engine != "duckdb":
        fail(as_json, f"--engine {engine!r}: use duckdb or trino", EXIT_USAGE)
    logging.basicConfig(level=logging.WARNING, format="  warning: %(message)s", stream=sys.stderr)
    from bakery.engine import BakeError
    from bakery.engine import bake as run_bake

    target = open_store(store, s3_endpoint, plan, as_json=as_json)
    url = getattr(target, "endpoint", None)
    order = [
        ly.name
        for ly in (
            plan.upstream(layers)
            if with_upstream
            else [ly for ly in plan.layers if ly.name in set(layers)]
        )
    ]
    reporter = RichReporter()
    started = time.perf_counter()
    with sigterm_as_ctrl_c():
        try:
            with s3_errors(url, as_json=as_json):
                if sample:
                    _seed_missing(plan, target, order, reporter, url)
                result = run_bake(
                    plan,
                    layers,
                    target,
                    with_upstream=with_upstream,
                    reporter=reporter,
                    ee_dsn=ee_dsn,
                    s3_endpoint=url,
                    threads=threads,
                    memory_limit=memory_limit,
                    runners=trino_session if engine == "trino" else None,
                )
        except BakeError as exc:
            status = reporter.layer_status(order, ok=False)
            if exc.result is not None and exc.result.unfinished_publish:
                status["failed_after_publishing"] = list(status["failed"])
                status["unfinished_publish"] = list(status["failed"])
            if as_json:
                summary_json = exc.result.to_dict() if exc.result is not None else {"ok": False}
                print(json.dumps({**summary_json, "error": str(exc), "layer_status": status}))
            elif exc.result is not None:
                summary(exc.result, status)
            print(f"bakery: error: {exc}", file=sys.stderr)
            raise typer.Exit(EXIT_FAILED) from None
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (bakery.cli.signals)
            reporter._stop()
            status = reporter.layer_status(order, ok=False)
            report_interrupted(status, started, target.description, as_json)
    status = reporter.layer_status(order, ok=True)
    if as_json:
        print(json.dumps({**result.to_dict(), "layer_status": status}))
    else:
        summary(result)


def _seed_missing(plan: Any, target: Any, order: list[str], reporter: Any, url: Any) -> None:
    """bake --sample: seed the inputs of the layers being baked that have no files."""
    from bakery import sample_data

    missing = sample_data.missing(plan, target, order)
    if not missing:
        return
    t0 = time.perf_counter()
    try:
        seeded = sample_data.seed_tables(plan, target, missing, s3_endpoint=url)
    except sample_data.SampleError as exc:
        print(f"bakery: error: {exc}", file=sys.stderr)
        raise typer.Exit(EXIT_FAILED) from None
    reporter.note(
        f"seeded sample data for {', '.join(s.ref for s in seeded)} in "
        f"{time.perf_counter() - t0:.1f}s: {', '.join(f for s in seeded for f in s.files)}"
    )


def _sizes(rows: list[str], addresses: int | None, ballots: int | None) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for item in rows:
        name, sep, value = item.partition("=")
        if not sep or not name or not value.isdigit() or int(value) < 1:
            usage_error(f"--rows {item!r}: give NAME=N (a generator or table, N >= 1)")
        sizes[name] = int(value)
    if addresses is not None:
        sizes["addressbase"] = addresses
    if ballots is not None:
        sizes["ballots"] = ballots
    return sizes


@app.command("sample-data")
def sample_data_command(
    layers: Annotated[
        list[str] | None,
        typer.Argument(
            help="Layers whose inputs to seed (default: every layer).",
            show_default=False,
        ),
    ] = None,
    rows: Annotated[
        list[str],
        typer.Option(
            "--rows",
            help="Size of a generated sample, NAME=N with NAME a generator (addressbase, "
            "ballots) or a table (layer.table); repeatable. Default: the YAML's rows, else "
            "the generator's own default.",
            metavar="NAME=N",
            show_default=False,
        ),
    ] = [],  # noqa: B006 - typer needs a literal default for a repeatable option
    addresses: Annotated[
        int | None, typer.Option("--addresses", min=1, hidden=True, help="= --rows addressbase=N")
    ] = None,
    ballots: Annotated[
        int | None, typer.Option("--ballots", min=2, hidden=True, help="= --rows ballots=N")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same data).")] = 1,
    store: StoreOption = None,
    s3_endpoint: SampleEndpointOption = None,
    env: EnvOption = "development",
) -> None:
    """Write the sample rows of every input that declares a `sample` (a file next to the
    layer or a registered generator) at its real location, replacing what is there.

    Exit 0 when written, 1 when an input declares no sample or the S3 endpoint cannot be
    reached, 2 on usage errors (including a --store that is not a usable directory or a
    malformed --s3-endpoint).
    """
    from bakery import sample_data

    end_process_after_command()
    plan = load_plan(env)
    _check_layers(plan, layers or [])
    sizes = _sizes(rows, addresses, ballots)
    target = open_store(store, s3_endpoint, plan)
    url = getattr(target, "endpoint", None)
    tables = sample_data.inputs(plan, layers or None)
    t0 = time.perf_counter()
    try:
        with sigterm_as_ctrl_c(), s3_errors(url):
            seeded = sample_data.seed_tables(
                plan, target, tables, rows=sizes, seed=seed, s3_endpoint=url
            )
    except sample_data.SampleError as exc:
        print(f"bakery: error: {exc}", file=sys.stderr)
        raise typer.Exit(EXIT_FAILED) from None
    except KeyboardInterrupt:  # each file is written whole (a put, or a rename)
        exit_interrupted()
    for item in seeded:
        print(f"wrote {item.summary} for {item.ref} ({item.source})", file=sys.stderr)
        for uri in item.files:
            print(f"  {uri}", file=sys.stderr)
    print(
        f"seeded {len(seeded)} input table{'s' if len(seeded) != 1 else ''} "
        f"in {time.perf_counter() - t0:.1f}s",
        file=sys.stderr,
    )


def _check_layers(plan: Any, layers: list[str]) -> None:
    if message := unknown_layer(plan, layers):
        usage_error(message)
