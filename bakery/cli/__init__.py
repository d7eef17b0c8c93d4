"""The `bakery` command. Each command group lives in its own module and registers on `app`.

Modules import heavy libraries (duckdb, aws_cdk, pygraphviz) inside the command
functions, so `bakery validate` starts fast.
"""

from __future__ import annotations

import importlib
import sys

from bakery.cli.common import app

# Registration order is the order `bakery --help` lists the commands in.
for _group in ("spec_commands", "local_commands", "docs_commands", "aws_commands"):
    importlib.import_module(f"bakery.cli.{_group}")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
