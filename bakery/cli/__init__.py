"""The `bakery` command. Each command group lives in its own module and registers on `app`.

Modules import heavy libraries (duckdb, aws_cdk, pygraphviz) inside the command
functions, so `bakery validate` starts fast.
"""

from __future__ import annotations

import importlib
import os
import sys

from bakery.cli.common import app

# Registration order is the order `bakery --help` lists the commands in.
for _group in (
    "spec_commands",
    "local_commands",
    "authoring_commands",
    "simulate_commands",
    "docs_commands",
    "aws_commands",
):
    importlib.import_module(f"bakery.cli.{_group}")


def main() -> None:
    try:
        app()
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
