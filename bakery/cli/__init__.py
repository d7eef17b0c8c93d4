"""The `bakery` command. Each command group lives in its own module and registers on `app`.

Modules import heavy libraries (duckdb, aws_cdk, pygraphviz) inside the command
functions, so `bakery validate` starts fast.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys

from bakery.cli import common
from bakery.cli.common import app

# Registration order is the order `bakery --help` lists the commands in.
for _group in (
    "spec_commands",
    "local_commands",
    "authoring_commands",
    "simulate_commands",
    "compare_commands",
    "docs_commands",
    "aws_commands",
):
    importlib.import_module(f"bakery.cli.{_group}")


def main() -> None:
    try:
        app()
    except SystemExit as exc:
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
