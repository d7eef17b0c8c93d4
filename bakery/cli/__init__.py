"""The `bakery` command. Each command group lives in its own module and registers on `app`.

Modules import heavy libraries (duckdb, aws_cdk, pygraphviz) inside the command
functions, so `bakery validate` starts fast.
"""

from __future__ import annotations

import sys

from bakery.cli import aws_commands, docs_commands, local_commands, spec_commands  # noqa: F401, E402
from bakery.cli.common import app


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
