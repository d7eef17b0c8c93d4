"""SIGTERM handled as Ctrl-C by the commands that write into a store (bake, simulate,
sample-data).

systemd, container runtimes and CI time-outs stop a process with SIGTERM (then SIGKILL
if it lingers). Python's default for SIGTERM is to die at once, skipping what a Ctrl-C
runs: a publish stopped half-way put back, the staging removed, the store's lock
released, the line saying what was published. Within `sigterm_as_ctrl_c()` the first
SIGTERM raises `Terminated`, a KeyboardInterrupt, so every path that handles Ctrl-C
(`grep KeyboardInterrupt bakery/engine bakery/simulate`) handles it the same way;
further SIGTERMs are ignored, so that they cannot break into that undo. The command then
says `terminated (SIGTERM)` where a Ctrl-C says `interrupted`, and exits 143 (128 + 15,
the shell's code for a process ended by SIGTERM) where a Ctrl-C exits 130.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

EXIT_TERMINATED = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where a Ctrl-C would be."""


_received = False


def _handler(signum: int, frame: Any) -> None:
    global _received
    if _received:
        return  # already stopping: let the undo of the first one finish
    _received = True
    raise Terminated()


@contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """Within the block, SIGTERM raises `Terminated` (once); outside, it is as before."""
    global _received
    _received = False
    try:
        previous = signal.signal(signal.SIGTERM, _handler)
    except ValueError:  # not the main thread (an embedding program): it cannot be handled
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def terminated() -> bool:
    """Whether the interrupt being handled came from SIGTERM. DuckDB turns an interrupt
    during a query into its own error, which the engine re-raises as a plain
    KeyboardInterrupt, so the signal is remembered here, not in the exception."""
    return _received


def stopped() -> str:
    """How the report of an interrupted command starts."""
    return "terminated (SIGTERM)" if _received else "interrupted"


def exit_interrupted() -> NoReturn:
    """End a command that was interrupted, once it has said what became of its work:
    143 after SIGTERM; after Ctrl-C the KeyboardInterrupt goes on to bakery.cli.main
    (which says `interrupted`, exit 130)."""
    import typer

    if _received:
        print("terminated (SIGTERM)", file=sys.stderr)
        raise typer.Exit(EXIT_TERMINATED)
    raise KeyboardInterrupt
