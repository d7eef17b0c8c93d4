"""simulate: run a layer's compiled state machine (the deployed ASL) on this machine.

The interpreter, DuckDB and moto are imported inside the command, so `bakery validate`
stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from bakery.cli.common import (
    EXIT_FAILED,
    EeDsnOption,
    EnvOption,
    JsonOption,
    SampleOption,
    app,
    load_plan,
    unknown_layer,
    usage_error,
)

_SHOWN = {"StateEntered": "", "StateRetried": "retried", "StateFailed": "failed"}


def _progress(event: dict[str, Any]) -> None:
    kind = event.get("type")
    if kind not in _SHOWN:
        return
    line = f"  {event['layer']}: {event.get('state')}"
    if kind != "StateEntered":
        line += f" {_SHOWN[kind]} ({event.get('error')})"
    print(line, file=sys.stderr, flush=True)


def _fail(message: str, as_json: bool, code: int = EXIT_FAILED) -> None:
    if as_json:
        print(json.dumps({"ok": False, "error": message, "exit_code": code}))
    print(f"bakery: error: {message}", file=sys.stderr)
    raise typer.Exit(code)


@app.command()
def simulate(
    layers: Annotated[list[str], typer.Argument(help="Layers to simulate.", show_default=False)],
    env: EnvOption = "development",
    store: Annotated[
        Path | None,
        typer.Option(
            "--store",
            help="Folder standing in for S3, as for bake ($BAKERY_STORE, default "
            ".bakery/store); loaded into a local S3 (moto) and updated from it after the run.",
            show_default=False,
        ),
    ] = None,
    with_upstream: Annotated[
        bool, typer.Option("--with-upstream", help="Simulate the layers these depend on first.")
    ] = False,
    sample: SampleOption = False,
    ee_dsn: EeDsnOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run layers' compiled Step Functions definitions (the JSON `bakery synth` writes and
    the stacks deploy) with a states-language interpreter; Athena tasks run on DuckDB,
    Lambda tasks are the real handlers against a local S3 (moto). Exit 0 when every state
    machine succeeds, 1 when one fails (its Fail state's error and cause are printed), 2
    on usage errors."""
    plan = load_plan(env)
    if message := unknown_layer(plan, layers):
        if as_json:
            print(json.dumps({"ok": False, "error": message, "exit_code": 2}))
        usage_error(message)
    from bakery.store import DEFAULT_STORE, LocalStore, StoreUnusable, check_local_root

    root = store or os.environ.get("BAKERY_STORE") or Path(plan.root) / DEFAULT_STORE
    try:
        path = check_local_root(Path(root), create=True)
    except StoreUnusable as exc:
        if as_json:
            print(json.dumps({"ok": False, "error": str(exc), "exit_code": 2}))
        usage_error(f"store {root} is not a usable directory: {exc}")
    from bakery.simulate.run import SimulateError
    from bakery.simulate.run import simulate as run_simulation

    if sample:  # as bake --sample: the inputs of the layers run that have no files
        from bakery import sample_data

        target = LocalStore(path)
        order = [
            ly.name
            for ly in (
                plan.upstream(layers)
                if with_upstream
                else [ly for ly in plan.layers if ly.name in set(layers)]
            )
        ]
        missing = sample_data.missing(plan, target, order)
        if missing:
            try:
                seeded = sample_data.seed_tables(plan, target, missing)
            except sample_data.SampleError as exc:
                _fail(str(exc), as_json)
                return
            print(f"  seeded sample data for {', '.join(s.ref for s in seeded)}", file=sys.stderr)
    try:
        result = run_simulation(
            plan,
            layers,
            path,
            with_upstream=with_upstream,
            ee_dsn=ee_dsn,
            on_event=None if as_json else _progress,
            project_root=Path(plan.root),
        )
    except SimulateError as exc:
        _fail(str(exc), as_json)
        return
    code = 0 if result.ok else EXIT_FAILED
    if as_json:
        print(json.dumps({**result.to_dict(), "exit_code": code}))
    for run in result.layers:
        line = f"{run.layer}: {run.status} in {run.seconds:.1f}s ({run.tasks} tasks)"
        print(line, file=sys.stderr)
    if not result.ok:
        last = result.layers[-1]
        message = f"{last.layer} {last.status}: {last.error}: {last.cause}"
        print(f"bakery: error: {message}", file=sys.stderr)
        raise typer.Exit(EXIT_FAILED)
