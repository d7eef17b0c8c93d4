"""`bakery compare`: two product trees, file by file and row by row."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from bakery.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, JsonOption, app
from bakery.compare import default_columns

# The installed product's columns (bakery.compare_defaults), shown as the options' defaults.
_DEFAULTS = default_columns()


@app.command()
def compare(
    a: Annotated[str, typer.Argument(help="First tree: a folder or s3://bucket/prefix/.")],
    b: Annotated[str, typer.Argument(help="Second tree: a folder or s3://bucket/prefix/.")],
    tolerance: Annotated[
        float,
        typer.Option(
            "--tolerance",
            min=0.0,
            max=100.0,
            help="Percentage of A's rows that may be added, removed or changed (default 0).",
        ),
    ] = 0.0,
    key: Annotated[
        str | None, typer.Option("--key", help="Column identifying a row.")
    ] = _DEFAULTS.get("key"),
    values: Annotated[
        str | None, typer.Option("--values", help="Column compared per row (a list or a value).")
    ] = _DEFAULTS.get("values"),
    s3_endpoint: Annotated[
        str | None, typer.Option("--s3-endpoint", help="S3-compatible endpoint URL.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Compare two product trees of <KEY>.parquet files (e.g. the shadow and production
    outcode files): files only on one side, rows added or removed, rows whose value
    changed, keys repeated in a file, schema differences. Exit 1 when they differ beyond
    --tolerance (files only on one side, repeated keys and schema differences always
    do), 2 on a tree that cannot be read (or holds a name.parquet that is not a regular
    file)."""
    from bakery.compare import CompareError, compare_trees, open_tree

    try:
        result = compare_trees(
            open_tree(a, s3_endpoint=s3_endpoint),
            open_tree(b, s3_endpoint=s3_endpoint),
            key=key,
            values=values,
            tolerance=tolerance,
        )
    except CompareError as exc:
        if as_json:
            print(json.dumps({"ok": False, "error": str(exc)}))
        print(f"bakery: error: {exc}", file=sys.stderr)
        raise typer.Exit(EXIT_USAGE) from None
    ok = not result.beyond_tolerance
    if as_json:
        print(json.dumps({"ok": ok, **result.to_dict()}, sort_keys=False))
    else:
        _table(result)
    raise typer.Exit(EXIT_OK if ok else EXIT_FAILED)


def _table(r) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    table = Table(title=f"A = {r.a}\nB = {r.b}", title_justify="left")
    table.add_column("")
    table.add_column("count", justify="right")
    table.add_column("examples")

    def show(items: list[str]) -> str:
        return ", ".join(items[:5]) + (" ..." if len(items) > 5 else "")

    table.add_row("files in A / B", f"{r.files_a:,} / {r.files_b:,}", "")
    table.add_row("files identical (not read)", f"{r.files_identical:,}", "")
    table.add_row("files compared row by row", f"{r.files_compared:,}", "")
    table.add_row("files only in A", f"{len(r.only_in_a):,}", show(r.only_in_a))
    table.add_row("files only in B", f"{len(r.only_in_b):,}", show(r.only_in_b))
    table.add_row("schema differences", f"{len(r.schema_differences):,}",
                  show(list(r.schema_differences)))  # fmt: skip
    table.add_row("rows of A", f"{r.addresses_a:,}", "")
    for label in ("added", "removed", "changed"):
        table.add_row(f"rows {label}", f"{getattr(r, label):,}",
                      show(r.examples.get(label, [])))  # fmt: skip
    for side in ("a", "b"):
        table.add_row(f"keys repeated in {side.upper()}", f"{getattr(r, f'duplicated_{side}'):,}",
                      show(r.examples.get(f"duplicated_{side}", [])))  # fmt: skip
    console.print(table)
    for name, schemas in list(r.schema_differences.items())[:5]:
        console.print(f"schema of {name}: A = {schemas['a']}\n{' ' * len(name)}           "
                      f"B = {schemas['b']}")  # fmt: skip
    verdict = "beyond" if r.beyond_tolerance else "within"
    console.print(
        f"{r.differing:,} rows differ ({r.percent:.3f} % of A), {verdict} the tolerance of "
        f"{r.tolerance:g} %; {r.seconds:.1f}s"
    )
