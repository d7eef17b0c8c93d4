"""The `bakery` command. Each command group lives in its own module and registers on `app`.

Modules import heavy libraries (duckdb, aws_cdk, pygraphviz) inside the command
functions, so `bakery validate` starts fast; typer and the command groups themselves
are imported only when a command runs (`app` is built on first use), so that a
`validate` of an unchanged project answers from bakery.cli.validate_cache first.
"""

from __future__ import annotations

import contextlib
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
    if sys.argv[1:2] == ["validate"]:
        from bakery.cli import validate_cache

        if validate_cache.answer(sys.argv[2:]):
            sys.exit(0)
    app = _app()
    try:
        app()  # type: ignore[operator]
    except SystemExit as exc:
        from bakery.cli import common

        if common.process_end_requested():
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
