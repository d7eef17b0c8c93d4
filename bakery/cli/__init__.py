"""The `bakery` command. Each command group lives in its own module and registers on `app`.

Modules import heavy libraries (duckdb, aws_cdk, pygraphviz) inside the command
functions, so `bakery validate` starts fast; typer and the command groups themselves
are imported only when a command runs (`app` is built on first use), so that a
`validate` of an unchanged project answers from bakery.cli.validate_cache first, and a
plain `validate` command line (paths, --env, --all-envs: validate_cache.parse) runs
bakery.cli.validate_run without typer at all; anything else (--help, a typo'd option)
goes to the typer command, which runs the same code.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys


def _app() -> object:
    from bakery.cli.common import app  # registers every command group

    return app


def __getattr__(name: str) -> object:
    if name == "app":
        return _app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    command = _typer_app
    if sys.argv[1:2] == ["validate"]:
        from bakery.cli import validate_cache

        if validate_cache.answer(sys.argv[2:]):
            sys.exit(0)
        parsed = validate_cache.parse(sys.argv[2:])
        if parsed is not None:
            command = functools.partial(_validate, *parsed)
    try:
        command()
    except SystemExit as exc:
        # only a command of the typer app can ask (and then bakery.cli.common is loaded)
        common = sys.modules.get("bakery.cli.common")
        if common is not None and common.process_end_requested():
            _end_process(exc.code)
        raise
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        # `bakery describe | head`: the reader left; say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
    except Exception as exc:
        from bakery.errors import BakeryError

        if isinstance(exc, BakeryError) and not os.environ.get("BAKERY_DEBUG"):
            # written for the user already: no class name, no traceback
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            print(f"bakery: error: {lines[0]}", file=sys.stderr)
            sys.exit(1)
        # Commands report the failures they expect in their own words; this is the last
        # resort, so that a user never gets a traceback (BAKERY_DEBUG=1 shows it).
        if os.environ.get("BAKERY_DEBUG"):
            raise
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(
            f"bakery: error: {type(exc).__name__}: {detail} (BAKERY_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        sys.exit(1)


def _typer_app() -> None:
    _app()()  # type: ignore[operator]


def _validate(paths: list[str], env: str, all_envs: bool) -> None:
    from pathlib import Path

    from bakery.cli.validate_run import Stop, run

    try:
        run([Path(p) for p in paths] or None, env, all_envs)
    except Stop as stop:
        sys.exit(stop.code)
    sys.exit(0)


def _end_process(code: object) -> None:
    """Flush what the command printed, then end the process without the interpreter's
    teardown (see common.end_process_after_command)."""
    status = code if isinstance(code, int) else (0 if code is None else 1)
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        status = 141
    with contextlib.suppress(BrokenPipeError):
        sys.stderr.flush()
    os._exit(status)
