"""simulate: run a layer's compiled state machine (the deployed ASL) on this machine.

The interpreter, DuckDB and moto are imported inside the command, so `bakery validate`
stays fast.
"""

from __future__ import annotations

import json
import os
import sys
import time
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
from bakery.cli.progress import report_interrupted
from bakery.cli.signals import sigterm_as_ctrl_c

_SHOWN = {"StateEntered": "", "StateRetried": "retried", "StateFailed": "failed"}


class _Progress:
    """Prints the states entered (unless quiet) and the notes; remembers which layers
    started and which were published, for the report of an interrupted run."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.started: list[str] = []
        self.published: set[str] = set()
        self.half_way: set[str] = set()

    def __call__(self, event: dict[str, Any]) -> None:
        from bakery.simulate.publish import HALF_WAY

        kind, layer = event.get("type"), event.get("layer") or ""
        if layer and layer not in self.started:
            self.started.append(layer)
        if kind == "Note":
            text = event["text"]
            if text.startswith("published "):
                self.published.add(layer)
            if text.startswith(HALF_WAY):
                self.half_way.add(layer)
            print(f"  {layer + ': ' if layer else ''}{text}", file=sys.stderr, flush=True)
        elif kind in _SHOWN and not self.quiet:
            line = f"  {layer}: {event.get('state')}"
            if kind != "StateEntered":
                line += f" {_SHOWN[kind]} ({event.get('error')})"
            print(line, file=sys.stderr, flush=True)

    def interrupted(self, order: list[str]) -> dict[str, list[str]]:
        """As a bake reports it (bakery.cli.progress.RichReporter.layer_status)."""
        failed = self.started[-1:]
        status = {
            "baked": self.started[:-1],
            "failed": failed,
            "failed_after_publishing": [n for n in failed if n in self.published],
            "not_started": [n for n in order if n not in self.started],
        }
        if any(n in self.half_way for n in failed):
            status["unfinished_publish"] = list(failed)
        return status


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
            ".bakery/store); loaded into a local S3 (moto); each layer that succeeds is "
            "published into it as bake publishes.",
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
    Lambda tasks are the real handlers against a local S3 (moto). Each layer whose state
    machine succeeds is published into the store as `bake` publishes (staged, journaled,
    under the store's lock). Exit 0 when every state machine succeeds, 1 when one fails
    (one line names the state that failed and its error), 2 on usage errors; 130 after
    Ctrl-C, 143 after SIGTERM."""
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

    order = [
        ly.name
        for ly in (
            plan.upstream(layers)
            if with_upstream
            else [ly for ly in plan.layers if ly.name in set(layers)]
        )
    ]
    if sample:  # as bake --sample: the inputs of the layers run that have no files
        from bakery import sample_data

        target = LocalStore(path)
        missing = sample_data.missing(plan, target, order)
        if missing:
            try:
                seeded = sample_data.seed_tables(plan, target, missing)
            except sample_data.SampleError as exc:
                _fail(str(exc), as_json)
                return
            print(f"  seeded sample data for {', '.join(s.ref for s in seeded)}", file=sys.stderr)
    progress = _Progress(quiet=as_json)
    started = time.perf_counter()
    with sigterm_as_ctrl_c():
        try:
            result = run_simulation(
                plan,
                layers,
                path,
                with_upstream=with_upstream,
                ee_dsn=ee_dsn,
                on_event=progress,
                project_root=Path(plan.root),
            )
        except SimulateError as exc:
            _fail(str(exc), as_json)
            return
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (bakery.cli.signals)
            status = progress.interrupted(order)
            report_interrupted(status, started, str(path), as_json, "simulated and published")
    code = 0 if result.ok else EXIT_FAILED
    # one line: the state that failed and its error, or why publishing into the store failed
    message = result.error or (result.layers[-1].failure() if result.layers else "nothing ran")
    if as_json:
        extra = {} if result.ok else {"error": message}
        print(json.dumps({**result.to_dict(), **extra, "exit_code": code}))
    for run in result.layers:
        line = f"{run.layer}: {run.status} in {run.seconds:.1f}s ({run.tasks} tasks)"
        print(line, file=sys.stderr)
    if not result.ok:
        print(f"bakery: error: {message}", file=sys.stderr)
        raise typer.Exit(EXIT_FAILED)
