"""`bakery engine install trino`: the engines bakery can run besides DuckDB."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from bakery.cli.common import EXIT_FAILED, EXIT_USAGE, app

engine_app = typer.Typer(help="Engines bakery runs besides DuckDB (Trino, Athena's engine).")
app.add_typer(engine_app, name="engine")


@engine_app.command("install")
def install(
    name: Annotated[str, typer.Argument(help="The engine: trino.", show_default=False)],
) -> None:
    """Download Trino (pinned version, checksums verified) from Maven Central into
    $BAKERY_TRINO_HOME (default ~/.cache/bakery/trino). Idempotent. Exit 0 ok, 1 when a
    download or checksum fails, 2 on usage errors or when no Java 24+ is found."""
    from bakery.trino import install as trino_install

    if name != "trino":
        print(f"bakery: error: engine {name!r}: only `trino` can be installed", file=sys.stderr)
        raise typer.Exit(EXIT_USAGE)
    try:
        folder = trino_install.install()
        java = trino_install.find_java()
    except trino_install.InstallError as exc:
        print(f"bakery: error: {exc}", file=sys.stderr)
        raise typer.Exit(EXIT_FAILED) from None
    except trino_install.Missing as exc:
        print(f"bakery: error: {exc}", file=sys.stderr)
        raise typer.Exit(EXIT_USAGE) from None
    print(f"Trino {trino_install.VERSION} ready in {folder} (Java {java})")


def ready_or_exit(as_json: bool = False) -> None:
    """Exit 2 with how to install them when Trino or a Java it runs on is missing."""
    from bakery.cli.local_options import fail
    from bakery.trino import install as trino_install

    try:
        trino_install.installed()
        trino_install.find_java()
    except trino_install.Missing as exc:
        fail(as_json, str(exc), EXIT_USAGE)
