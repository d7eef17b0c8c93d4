"""How a bake looks on a terminal: progress lines while it runs, the tables and the
verdict after it (rich, imported on first use)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, NoReturn


def make_console(stderr: bool = True, *, markup: bool = True):
    """A rich console; wide enough for the tables when output is not a terminal.

    markup=False for consoles that print data (lookup): an address holding `[/]` or
    `[bold]` is text, never rich markup."""
    from rich.console import Console

    options: dict[str, Any] = {"stderr": stderr, "highlight": False}
    if not markup:
        options.update(markup=False, emoji=False)
    console = Console(**options)
    if not console.is_terminal:
        console = Console(**options, width=160)
    return console


class RichReporter:
    """Progress on stderr: a spinner per running step, one line per finished step."""

    def __init__(self, quiet: bool = False):
        self.console = make_console()
        self.quiet = quiet
        self.status: Any = None
        self.started: list[str] = []  # layers in the order they started
        self.published: set[str] = set()  # layers whose staged tables were published
        self.half_way: set[str] = set()  # layers whose publish a Ctrl-C stopped half-way

    def layer(self, layer: Any) -> None:
        self.started.append(layer.name)
        self.console.print(f"[bold cyan]layer {layer.name}[/]")

    def start(self, step: Any) -> None:
        if self.console.is_terminal:
            self.status = self.console.status(f"  {step.id} ({step.kind}) ...")
            self.status.start()

    def _stop(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None

    def done(self, result: Any) -> None:
        self._stop()
        mark = "[green]ok[/]" if result.ok else "[red]FAILED[/]"
        parts = [f"  {mark} {result.id} [dim]({result.kind})[/] {result.seconds:.2f}s"]
        if result.rows is not None:
            parts.append(f"{result.rows:,} rows")
        if result.files:
            parts.append(f"{result.files:,} files")
        if getattr(result, "rejected", None):
            parts.append(f"[yellow]{result.rejected:,} rejected[/]")
        if result.note and result.ok:
            parts.append(f"[dim]{result.note}[/]")
        self.console.print("  ".join(parts))

    def note(self, text: str) -> None:
        self._stop()
        if text.startswith("published ") and self.started:
            self.published.add(self.started[-1])
        if text.startswith(HALF_WAY) and self.started:
            self.half_way.add(self.started[-1])
        self.console.print(f"  [dim]{text}[/]")

    def layer_status(self, order: list[str], ok: bool) -> dict[str, list[str]]:
        """Which layers were baked and published, which failed, which never started.

        Layers run one after another, so every started layer but the last finished; the
        last one finished only when the whole bake did."""
        done = self.started if ok else self.started[:-1]
        failed = [] if ok else self.started[-1:]
        status = {
            "baked": list(done),
            "failed": failed,
            "failed_after_publishing": [
                n for n in failed if n in self.published or n in self.half_way
            ],
            "not_started": [n for n in order if n not in self.started],
        }
        if any(n in self.half_way for n in failed):
            status["unfinished_publish"] = list(failed)
        return status


# the runner's note when a Ctrl-C left a publish half done (bakery.engine.runner)
HALF_WAY = "publishing stopped half-way"


def status_line(
    status: dict[str, list[str]], verb: str = "failed", done: str = "baked and published"
) -> str:
    """`baked and published: a; failed: b (published data unchanged); not started: c`."""

    def names(items: list[str]) -> str:
        return ", ".join(items) or "none"

    failed = names(status["failed"])
    if status["failed"]:
        if status.get("unfinished_publish"):
            failed += " (its publish stopped half-way; the next bake finishes it)"
        elif status["failed_after_publishing"]:
            failed += " (it was published, then failed)"
        else:
            failed += " (its published data is unchanged)"
    return (
        f"{done}: {names(status['baked'])}; {verb}: {failed}; "
        f"not started: {names(status['not_started'])}"
    )


def report_interrupted(
    status: dict[str, list[str]],
    started: float,
    store: str,
    as_json: bool,
    done: str = "baked and published",
) -> NoReturn:
    """Say what became of each layer when Ctrl-C or SIGTERM stopped a bake or a simulate
    (one line on stderr, and the JSON summary with --json), then end the command."""
    from bakery.cli.signals import exit_interrupted, stopped

    line = (
        f"{stopped()} after {time.perf_counter() - started:.1f}s (store {store}): "
        f"{status_line(status, 'interrupted', done=done)}"
    )
    if as_json:
        print(json.dumps({"ok": False, "error": line, "layer_status": status}))
    print(line, file=sys.stderr)
    exit_interrupted()


def summary(result: Any, status: dict[str, list[str]] | None = None) -> None:
    from rich.markup import escape
    from rich.table import Table

    console = make_console()
    steps = Table("layer", "step", "kind", "rows", "files", "seconds", box=None, title="steps")
    for st in result.steps:
        steps.add_row(
            st.layer,
            st.id,
            st.kind,
            "" if st.rows is None else f"{st.rows:,}",
            "" if not st.files else f"{st.files:,}",
            f"{st.seconds:.2f}",
        )
    if result.steps:
        console.print(steps)
    rejected = getattr(result, "rejected", None) or {}
    if any(info["rows"] for info in rejected.values()):
        quarantined = Table(
            "step", "rejects table", "rows", "reasons", box=None, title="rejected rows"
        )
        for step, info in rejected.items():
            reasons = ", ".join(f"{why}: {n:,}" for why, n in info["reasons"].items())
            quarantined.add_row(step, info["table"], f"{info['rows']:,}", escape(reasons))
        console.print(quarantined)
    if result.tables:
        tables = Table("table", "rows", "files", "location", box=None, title="published tables")
        for ref, info in result.tables.items():
            tables.add_row(ref, f"{info['rows']:,}", f"{info['files']:,}", info["location"])
        console.print(tables)
    if result.ok or status is None:
        verdict = "[green]baked[/]" if result.ok else "[red]failed[/]"
        console.print(
            f"{verdict} {', '.join(result.layers)} in {result.seconds:.1f}s "
            f"(store {escape(result.store)})",
            soft_wrap=True,
        )
    else:
        console.print(
            f"[red]failed[/] after {result.seconds:.1f}s (store {escape(result.store)}): "
            f"{escape(status_line(status))}",
            soft_wrap=True,
        )
