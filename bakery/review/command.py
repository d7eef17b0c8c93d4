"""`bakery review A B --out review.html`: registers on the CLI app."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from bakery.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    EnvOption,
    JsonOption,
    app,
    end_process_after_command,
    load_plan,
)


@app.command()
def review(
    a: Annotated[str, typer.Argument(help="First tree: a folder or s3://bucket/prefix/.")],
    b: Annotated[str, typer.Argument(help="Second tree: a folder or s3://bucket/prefix/.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the HTML page here.", dir_okay=False)
    ] = None,
    store: Annotated[
        Path | None,
        typer.Option(
            "--store",
            help="Local store of the bake that made B, for coordinates and ballot polygons "
            "(default: the store B's folder sits in, else A's).",
        ),
    ] = None,
    s3_endpoint: Annotated[
        str | None, typer.Option("--s3-endpoint", help="S3-compatible endpoint URL.")
    ] = None,
    env: EnvOption = "development",
    as_json: JsonOption = False,
) -> None:
    """A page of what changed from A to B: compare's summary, a map of the changed
    addresses and of the ballots they gained or lost, a table per outcode (one
    self-contained HTML file, nothing fetched when opened). --json prints the same data.
    Exit 0 when written, 2 when a tree cannot be read or neither --out nor --json is given."""
    from bakery.compare import CompareError
    from bakery.review.data import collect
    from bakery.review.page import MissingAssets, render

    end_process_after_command()
    if out is None and not as_json:
        print("bakery: error: give --out review.html, or --json", file=sys.stderr)
        raise typer.Exit(EXIT_USAGE)
    plan = load_plan(env, check_sql=False)
    try:
        data = collect(a, b, plan=plan, store=store, s3_endpoint=s3_endpoint)
        page = render(data) if out is not None else None
    except (CompareError, MissingAssets) as exc:
        print(f"bakery: error: {exc}", file=sys.stderr)
        raise typer.Exit(EXIT_USAGE) from None
    if out is not None and page is not None:
        out.write_text(page, encoding="utf-8")
        print(f"wrote {out} ({len(page.encode()) / 1e6:.1f} MB): {data['changed']:,} changed "
              f"addresses, {data['drawn']:,} drawn, {len(data['polygons'])} ballot polygons",
              file=sys.stderr)  # fmt: skip
    if as_json:
        print(json.dumps(data))
    raise typer.Exit(EXIT_OK)
