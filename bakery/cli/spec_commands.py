"""validate, schema, describe: the commands that need nothing but the specs."""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from bakery.cli.common import EnvOption, JsonOption, app, load_plan, usage_error


@app.command()
def validate(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Layer files to check (default: every layer). Other files are "
            "accepted and trigger a full check, so a pre-commit hook can pass any change."
        ),
    ] = None,
    env: EnvOption = "development",
    all_envs: Annotated[
        bool, typer.Option("--all-envs", help="Check every environment, not only --env.")
    ] = False,
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine",
            help="trino: also have a local Trino type every athena_query's output "
            "(needs `bakery engine install trino`).",
        ),
    ] = None,
) -> None:
    """Check layer specs: shape, references, locations, cycles, cron, and every query's SQL.

    Prints one line per problem, FILE:LINE:COL: path: message, and exits 1 if any.
    """
    from bakery.cli.validate_run import Stop, run

    if engine not in (None, "trino"):
        usage_error(f"--engine {engine}: only `trino` can check queries")
    try:
        run(paths, env, all_envs, engine)
    except Stop as stop:
        raise typer.Exit(stop.code) from None


@app.command()
def schema(
    out: Annotated[Path, typer.Option("--out", help="Folder for the JSON Schema files.")] = Path(
        "schemas"
    ),
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 if the files on disk are out of date.")
    ] = False,
) -> None:
    """Write the JSON Schemas of layer files and of bakery.yaml (for editor completion)."""
    from bakery.schema import schema_files

    stale = []
    for name, text in schema_files().items():
        target = out / name
        if check:
            if not target.is_file() or target.read_text() != text:
                stale.append(str(target))
            continue
        try:
            out.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        except OSError as exc:
            print(f"bakery: error: cannot write {target}: {exc.strerror}", file=sys.stderr)
            raise typer.Exit(1) from None
        print(f"wrote {target}", file=sys.stderr)
    if stale:
        print(f"out of date: {', '.join(stale)}; run `bakery schema`", file=sys.stderr)
        raise typer.Exit(1)


def describe_data(plan: Any, layer: str | None = None) -> dict[str, Any]:
    """The stable, script-facing description of a plan (the --json form of describe)."""

    def column(c: Any) -> dict[str, Any]:
        return {"name": c.name, "type": c.type, "description": c.description}

    from bakery.render import by_step

    layers = plan.layers if layer is None else [plan.layer(layer)]
    sql = {ly.name: by_step(plan, ly) for ly in layers}
    return {
        "env": plan.env,
        "glue_database": plan.project.glue_database,
        "order": [ly.name for ly in plan.layers],
        "layers": [
            {
                "name": ly.name,
                "file": ly.file,
                "description": ly.description,
                "depends_on": ly.depends_on,
                "singleton": ly.singleton,
                "timeout_minutes": ly.spec.timeout_minutes,
                "triggers": {
                    "schedule": ly.triggers.schedule,
                    "events": list(ly.triggers.events),
                    "delay_seconds": ly.triggers.delay_seconds,
                },
                "steps": [
                    {
                        "id": st.id,
                        "kind": st.kind,
                        "reads": st.reads,
                        "writes": st.writes,
                        "over": st.over_values,
                        # the exact statements, as `bakery render` prints them
                        "sql": sql[ly.name].get(st.id, {}),
                        "steps": [
                            {
                                "id": c.id,
                                "kind": c.kind,
                                "reads": c.reads,
                                "writes": c.writes,
                                "sql": sql[ly.name].get(c.id, {}),
                            }
                            for c in st.children
                        ],
                    }
                    for st in ly.steps
                ],
                "tables": [
                    {
                        "ref": t.ref,
                        "name": t.name,
                        "layer": t.layer,
                        "glue_name": t.glue_name,
                        "format": t.format,
                        "location": t.location,
                        "external": t.external,
                        "columns": [column(c) for c in t.columns],
                        "partition_keys": [column(c) for c in t.partition_keys],
                        "read_by": t.read_by,
                    }
                    for t in ly.tables
                ],
            }
            for ly in layers
        ],
    }


@app.command()
def describe(
    layer: Annotated[str | None, typer.Argument(help="One layer (default: all).")] = None,
    env: EnvOption = "development",
    as_json: JsonOption = False,
) -> None:
    """Show layers in run order, their steps and tables with resolved s3:// locations."""
    plan = load_plan(env)
    names = [ly.name for ly in plan.layers]
    if layer is not None and layer not in names:
        close = difflib.get_close_matches(layer, names, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        usage_error(f"unknown layer {layer!r}{hint} (layers: {', '.join(names)})")
    data = describe_data(plan, layer)
    if as_json:
        print(json.dumps(data, indent=2, sort_keys=False))
        return
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)
    console.print(f"[bold]environment[/] {plan.env}   [bold]order[/] {' -> '.join(data['order'])}")
    for ly in data["layers"]:
        console.print()
        console.print(f"[bold cyan]{ly['name']}[/]  ({ly['file']})")
        console.print(f"  {ly['description']}")
        if ly["depends_on"]:
            console.print(f"  depends on: {', '.join(ly['depends_on'])}")
        trig = ly["triggers"]
        if trig["schedule"] or trig["events"]:
            events = ", ".join(trig["events"])
            console.print(f"  triggers: {trig['schedule'] or ''} {events}".rstrip())
        if ly["singleton"]:
            console.print(
                "  singleton: one run at a time (a start while one runs is deferred, not failed)"
            )
        console.print("  steps:")
        for n, st in enumerate(ly["steps"], 1):
            console.print(f"    {n}. {st['id']} ({st['kind']})")
        console.print("  tables:")
        for t in ly["tables"]:
            keys = ", ".join(c["name"] for c in t["partition_keys"])
            extra = (f", partitioned by {keys}" if keys else "") + (
                ", external input" if t["external"] else ""
            )
            console.print(f"    [bold]{t['name']}[/] ({t['format']}{extra})")
            console.print(f"      {t['location']}")
            for c in t["columns"]:
                console.print(f"      - {c['name']}: {c['type']}")
