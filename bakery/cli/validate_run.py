"""What `bakery validate` does, without typer: the typer command (spec_commands) and
the plain command line's fast start (bakery/cli/__init__.py) both run `run`."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Any

from bakery.cli.plan_loading import Stop, load_plans, problems_stop, usage_stop


def run(
    paths: list[Path] | None,
    env: str,
    all_envs: bool,
    engine: str | None = None,
    trino: Any = None,
) -> None:
    """Check the layers; prints `ok: ...` or every problem (then Stop(1) or Stop(2)).
    `engine="trino"`: then every athena_query is also described by a local Trino (the
    running server `trino` when given, else one started here)."""
    from bakery import query_cache
    from bakery.cli import validate_cache
    from bakery.errors import SpecError
    from bakery.planning import athena_concurrency
    from bakery.sql import DIALECT

    started = time.perf_counter()
    layer_files = []
    for path in paths or []:
        if not path.exists():
            usage_stop(f"no such file: {path}")
        # layer tests (layers/tests/*.yaml, run by `bakery test`) are not layer files
        if (
            path.suffix in (".yaml", ".yml")
            and path.name != "bakery.yaml"
            and path.parent.name != "tests"
        ):
            layer_files.append(path)
    root = validate_cache.project_root()
    with query_cache.enabled(root, DIALECT) if root else contextlib.nullcontext():
        plans = load_plans(None if all_envs else [env], layer_files or None)
        tests = _check_layer_tests(plans)
    if over := athena_concurrency.over_quota(plans):  # Athena's query quota, per account
        problems_stop(SpecError(over))
    envs = [p.env for p in plans]
    plan = plans[0]
    described = _on_trino(plans, trino) if engine == "trino" else None
    elapsed = time.perf_counter() - started
    n = len(plan.layers)
    message = (
        f"ok: {n} layer{'s' if n != 1 else ''}, {len(plan.tables)} tables"
        + (f", {tests} layer test{'s' if tests != 1 else ''}" if tests else "")
        + (f", {described} queries described by Trino" if described is not None else "")
        + f" ({', '.join(envs)})"
    )
    print(f"{message} in {elapsed:.2f}s", file=sys.stderr)
    if engine is None:  # the remembered answer is plain validate's
        validate_cache.remember(
            [str(p) for p in paths or []], env, all_envs, message + " in {elapsed}"
        )


def _on_trino(plans: list[Any], given: Any) -> int:
    """Every athena_query of every plan described by one local Trino (exit 2 when Java
    or Trino is missing); Stop(1) after printing each problem."""
    from bakery.cli.engine_commands import ready_or_exit
    from bakery.errors import BakeryError, SpecError
    from bakery.trino import describe, server

    problems: list[Any] = []
    checked = 0
    if given is None:
        ready_or_exit()
    try:
        with contextlib.nullcontext(given) if given else server.running() as trino:
            for plan in plans:
                found, n = describe.check(plan, trino)
                problems += [p for p in found if p not in problems]
                checked += n
    except BakeryError as exc:  # the server did not start: its log is named
        print(f"bakery: error: {exc}", file=sys.stderr)
        raise Stop(1) from None
    if problems:
        problems_stop(SpecError(problems))
    return checked


def _check_layer_tests(plans: list[Any]) -> int:
    """The layer test files (layers/tests/*.yaml) resolve: tables, columns, files."""
    from bakery import layer_tests
    from bakery.errors import SpecError

    plan = plans[0]
    try:
        tests = layer_tests.discover(plan.root, plan.project.layers_dir)
        for each in plans:
            layer_tests.check(each, tests)
    except SpecError as exc:
        problems_stop(exc)
    return len(tests)


__all__ = ["Stop", "run"]
