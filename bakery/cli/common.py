"""Shared pieces of the CLI: the Typer app, options, and how spec problems are reported."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from bakery.errors import SpecError

app = typer.Typer(
    name="bakery",
    help="Declarative data layers: YAML specs validated, compiled to AWS, or baked on DuckDB.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


EnvOption = Annotated[
    str,
    typer.Option(
        "--env",
        "-e",
        envvar="DC_ENVIRONMENT",
        help="Environment: development, staging or production ($DC_ENVIRONMENT).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def fail_spec(exc: SpecError) -> NoReturn:
    for problem in exc.problems:
        print(problem, file=sys.stderr)
    n = len(exc.problems)
    print(f"{n} problem{'s' if n != 1 else ''} found", file=sys.stderr)
    raise typer.Exit(EXIT_FAILED)


def usage_error(message: str) -> NoReturn:
    print(f"bakery: error: {message}", file=sys.stderr)
    raise typer.Exit(EXIT_USAGE)


def load_plan(env: str, paths: list[Path] | None = None, *, check_sql: bool = True) -> Any:
    """Workspace + plan for `env`, exiting 1 with every problem, or 2 for an unknown env."""
    return load_plans([env], paths, check_sql=check_sql)[0]


def load_plans(
    envs: list[str] | None, paths: list[Path] | None = None, *, check_sql: bool = True
) -> list[Any]:
    """Plans for several environments (all when `envs` is None) from one reading of the files."""
    from bakery.plan import build_plan
    from bakery.workspace import NoProject, find_root, load_workspace

    try:
        root = find_root()
    except NoProject as exc:
        usage_error(str(exc))
    try:
        ws = load_workspace(root, only=paths)
        known = list(ws.project.environments)
        for env in envs or []:
            if env not in known:
                usage_error(f"unknown environment {env!r}; use one of: {', '.join(known)}")
        return [build_plan(ws, env, check_sql=check_sql) for env in envs or known]
    except SpecError as exc:
        fail_spec(exc)
