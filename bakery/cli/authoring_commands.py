"""test: the layer tests in YAML, run on DuckDB (bakery/layer_tests.py)."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer

from bakery.cli.common import EXIT_FAILED, EnvOption, JsonOption, app, fail_spec, load_plan


def check_layers(plan: object, layers: list[str]) -> None:
    """Unknown layer names are a usage error with a suggestion."""
    from bakery.cli.common import unknown_layer, usage_error

    if message := unknown_layer(plan, layers):
        usage_error(message)


@app.command("test")
def test_command(
    layers: Annotated[
        list[str] | None,
        typer.Argument(
            help="Layers whose tests to run (default: every layer's).",
            show_default=False,
        ),
    ] = None,
    env: EnvOption = "development",
    as_json: JsonOption = False,
) -> None:
    """Run the layer tests in <layers>/tests/*.yaml on DuckDB: given rows per input table,
    expect the rows of a table a step writes. Prints a diff of expected (-) and actual (+)
    rows for each failure.

    Exit 0 when every test passes, 1 when one fails or a test file has a problem, 2 on
    usage errors.
    """
    from bakery import layer_tests
    from bakery.errors import SpecError

    plan = load_plan(env)
    check_layers(plan, layers or [])
    started = time.perf_counter()
    try:
        tests = layer_tests.discover(plan.root, plan.project.layers_dir, layers or None)
        layer_tests.check(plan, tests)
    except SpecError as exc:
        if as_json:
            print(json.dumps({"ok": False, "problems": [str(p) for p in exc.problems]}))
        fail_spec(exc)
    from bakery.engine import duck

    outcomes = []
    con = duck.connect() if tests else None
    for test in tests:
        outcome = layer_tests.run(plan, test, con)
        outcomes.append(outcome)
        if as_json:
            continue
        if outcome.ok:
            print(f"ok   {test.id} ({outcome.seconds:.2f}s)", file=sys.stderr)
        else:
            print(f"FAIL {test.id} ({test.file}:{test.line})", file=sys.stderr)
            for line in layer_tests.explain(outcome):
                print(line, file=sys.stderr)
    if con is not None:
        con.close()
    failed = [o for o in outcomes if not o.ok]
    seconds = time.perf_counter() - started
    if as_json:
        print(
            json.dumps(
                {
                    "ok": not failed,
                    "seconds": round(seconds, 3),
                    "tests": [
                        {
                            "id": o.test.id,
                            "file": f"{o.test.file}:{o.test.line}",
                            "ok": o.ok,
                            "seconds": round(o.seconds, 3),
                            "error": o.error,
                            "diff": layer_tests.explain(o),
                        }
                        for o in outcomes
                    ],
                }
            )
        )
    else:
        print(
            f"{len(outcomes) - len(failed)} passed, {len(failed)} failed in {seconds:.1f}s"
            + ("" if outcomes else " (no tests: add them in layers/tests/*.yaml)"),
            file=sys.stderr,
        )
    if failed:
        raise typer.Exit(EXIT_FAILED)


@app.command("render")
def render_command(
    layer: Annotated[str, typer.Argument(help="The layer.", show_default=False)],
    step: Annotated[
        str | None, typer.Argument(help="One step id (default: every step).", show_default=False)
    ] = None,
    env: EnvOption = "development",
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="athena: the text the state machine sends (UNLOAD, staging, parameters); "
            "duckdb: the transpiled text the local engine runs.",
            metavar="athena|duckdb",
        ),
    ] = "athena",
    as_json: JsonOption = False,
) -> None:
    """Print the exact SQL each step of a layer runs, with its parameters.

    Exit 0, or 2 on usage errors (unknown layer, step or engine).
    """
    from bakery import render
    from bakery.cli.common import usage_error

    if engine not in render.ENGINES:
        usage_error(f"--engine {engine!r}: use athena or duckdb")
    plan = load_plan(env)
    check_layers(plan, [layer])
    ly = plan.layer(layer)
    if step is not None:
        ids = [s.id for s in render.steps_of(ly)]
        if step not in ids:
            import difflib

            close = difflib.get_close_matches(step, ids, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; steps: {', '.join(ids)}"
            usage_error(f"layer {layer!r} has no step {step!r}{hint}")
    statements = render.render(plan, ly, engine, step)
    if as_json:
        print(json.dumps([s.to_dict() for s in statements], indent=2))
        return
    sys.stdout.write(render.as_text(statements))
