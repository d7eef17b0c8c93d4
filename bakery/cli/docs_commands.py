"""graph, docs, new: pictures, the catalog and new layers, all from the specs.

pygraphviz is imported only inside `graph`, when a PNG or SVG is drawn.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from bakery.cli.common import EXIT_FAILED, EnvOption, app, fail_spec, load_plan, usage_error

DEFAULT_IMAGE = Path("databaker.png")
DEFAULT_DOT = Path("docs/databaker.dot")
DEFAULT_CATALOG = Path("docs/catalog.md")


class GraphFormat(StrEnum):
    png = "png"
    svg = "svg"
    dot = "dot"
    mermaid = "mermaid"


def _root() -> Path:
    from bakery.workspace import NoProject, find_root

    try:
        return find_root()
    except NoProject as exc:
        usage_error(str(exc))


def _stale(path: Path, text: str, command: str) -> bool:
    if path.is_file() and path.read_text() == text:
        return False
    state = "missing" if not path.is_file() else "out of date"
    print(f"{path} is {state}; run `{command}` and commit it", file=sys.stderr)
    return True


def _folder_for(path: Path) -> None:
    """Create the folder of an output file; a path that cannot be one (under a file,
    not writable) is a usage error naming it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        reason = f"{blocker} is a file, not a folder" if blocker else (exc.strerror or str(exc))
        usage_error(f"cannot write {path}: {reason}; give --out a file in a folder")


def _write(path: Path, text: str | None = None) -> None:
    _folder_for(path)
    if text is not None:
        try:
            path.write_text(text)
        except OSError as exc:
            usage_error(f"cannot write {path}: {exc.strerror or exc}")
    print(f"wrote {path}", file=sys.stderr)


@app.command()
def graph(
    env: EnvOption = "development",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Output file (default: databaker.png at the project root, "
            "or stdout for dot and mermaid). '-' writes text formats to stdout.",
        ),
    ] = None,
    fmt: Annotated[
        GraphFormat | None,
        typer.Option(
            "--format", "-f", help="png, svg, dot or mermaid (default: from --out, else png)."
        ),
    ] = None,
    dot_out: Annotated[
        Path | None,
        typer.Option(
            "--dot",
            help="Also write the DOT text here (default with the PNG: docs/databaker.dot, "
            "which `--check` and the tests compare).",
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option("--check", help="Exit 1 if docs/databaker.dot (or --dot) is out of date."),
    ] = False,
) -> None:
    """Draw every layer: steps in order, tables, S3 prefixes, triggers and cross-layer edges.

    With no options, writes databaker.png and docs/databaker.dot at the project root.
    """
    from bakery.graph import build_graph, render, to_dot, to_mermaid

    if fmt is None:
        suffix = out.suffix.lower().lstrip(".") if out is not None and str(out) != "-" else ""
        known = {"png": "png", "svg": "svg", "dot": "dot", "gv": "dot", "mmd": "mermaid"}
        if suffix and suffix not in known:
            usage_error(f"cannot tell the format of {out}; give --format png|svg|dot|mermaid")
        fmt = GraphFormat(known.get(suffix, "png"))
    plan = load_plan(env)
    model = build_graph(plan)
    dot = to_dot(model)
    root = _root()
    if check:
        if _stale(dot_out or root / DEFAULT_DOT, dot, "bakery graph"):
            raise typer.Exit(EXIT_FAILED)
        print("graph is up to date", file=sys.stderr)
        return
    if fmt in (GraphFormat.dot, GraphFormat.mermaid):
        text = dot if fmt is GraphFormat.dot else to_mermaid(model)
        if out is None or str(out) == "-":
            sys.stdout.write(text)
        else:
            _write(out, text)
        if dot_out is not None:
            _write(dot_out, dot)
        return
    if out is not None and str(out) == "-":
        usage_error(f"{fmt.value} is binary; give --out FILE")
    target = out if out is not None else root / DEFAULT_IMAGE
    _folder_for(target)
    try:
        render(dot, target, fmt.value)
    except Exception as exc:  # Graphviz errors carry multi-line text
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"bakery: error: could not draw {target}: {first}", file=sys.stderr)
        raise typer.Exit(EXIT_FAILED) from None
    _write(target)
    if dot_out is not None or out is None:
        _write(dot_out or root / DEFAULT_DOT, dot)


@app.command()
def docs(
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Markdown file (default: docs/catalog.md); '-': stdout."),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 if the file on disk is out of date.")
    ] = False,
) -> None:
    """Write the catalog: layers, steps, and every table's columns and location per environment."""
    from bakery.catalog import render_catalog

    plans = []
    first = load_plan(_first_env())
    for env in first.project.environments:
        plans.append(first if env == first.env else load_plan(env))
    text = render_catalog(plans)
    target = out if out is not None else _root() / DEFAULT_CATALOG
    if check:
        if _stale(target, text, "bakery docs"):
            raise typer.Exit(EXIT_FAILED)
        print(f"{target} is up to date", file=sys.stderr)
        return
    if str(target) == "-":
        sys.stdout.write(text)
        return
    _write(target, text)


def _first_env() -> str:
    from bakery.errors import SpecError
    from bakery.workspace import load_project

    try:
        project, _ = load_project(_root())
    except SpecError as exc:
        fail_spec(exc)
    return next(iter(project.environments))


@app.command()
def new(
    layer: Annotated[str, typer.Argument(help="Name of the new layer, in lower snake case.")],
) -> None:
    """Write layers/LAYER.yaml and layers/queries/LAYER.sql: a skeleton that validates.

    Refuses to overwrite anything.
    """
    from bakery.scaffold import ScaffoldError, check_name, new_layer

    problem = check_name(layer)
    if problem:
        usage_error(problem)
    root = _root()
    try:
        written = new_layer(root, layer, _first_env())
    except ScaffoldError as exc:
        print(f"bakery: error: {exc}", file=sys.stderr)
        raise typer.Exit(EXIT_FAILED) from None
    for path in written:
        print(f"wrote {path.relative_to(root)}", file=sys.stderr)
    print(f"next: edit them, then `bakery validate` and `bakery describe {layer}`", file=sys.stderr)
