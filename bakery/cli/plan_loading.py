"""Loading plans for a command, without typer: every problem printed, then Stop.

`bakery validate` runs from here without importing typer when its command line is a
plain one (bakery/cli/__init__.py); the typer commands use the same code through
bakery.cli.common, which turns Stop into typer.Exit with the same code.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

from bakery.errors import SpecError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class Stop(Exception):
    """The command is over: what went wrong is printed; `code` is the exit code."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def usage_stop(message: str) -> NoReturn:
    print(f"bakery: error: {message}", file=sys.stderr)
    raise Stop(EXIT_USAGE)


def problems_stop(exc: SpecError) -> NoReturn:
    for problem in exc.problems:
        print(problem, file=sys.stderr)
    n = len(exc.problems)
    print(f"{n} problem{'s' if n != 1 else ''} found", file=sys.stderr)
    raise Stop(EXIT_FAILED)


def load_plans(
    envs: list[str] | None, paths: list[Path] | None = None, *, check_sql: bool = True
) -> list[Any]:
    """Plans for several environments (all when `envs` is None) from one reading of the
    files; Stop(1) after printing every problem, Stop(2) for an unknown environment."""
    from bakery.plan import build_plan
    from bakery.workspace import NoProject, find_root, load_workspace

    try:
        root = find_root()
    except NoProject as exc:
        usage_stop(str(exc))
    try:
        try:
            ws = load_workspace(root, only=paths)
        except NoProject as exc:  # e.g. a layers folder that cannot be listed
            usage_stop(str(exc))
        known = list(ws.project.environments)
        for env in envs or []:
            if env not in known:
                usage_stop(f"unknown environment {env!r}; use one of: {', '.join(known)}")
        return [build_plan(ws, env, check_sql=check_sql) for env in envs or known]
    except SpecError as exc:
        problems_stop(exc)
