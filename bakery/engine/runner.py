"""The bake: layers of the plan run step by step on DuckDB, published only on success.

Per layer, as its publish plan says (bakery.planning.publish_plan, which the compiled
state machine obeys too): every table the layer writes is staged (see bakery.engine.
publish); checks read the staged tables; an export_by_key step writes its files into a
staged folder too. When the layer ends with every step passed, the staged tables and
exports replace the published ones in one journaled publish.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from bakery import sample_data
from bakery.engine import duck, empty_input, publish, published
from bakery.engine.context import Context, pause
from bakery.engine.damaged import is_interrupt as _interrupted
from bakery.engine.damaged import one_line as _one_line
from bakery.engine.steps import RUNNERS, StepFailed, StepOutcome
from bakery.errors import BakeryError
from bakery.plan import LayerPlan, Plan, StepPlan
from bakery.planning.publish_plan import publish_plan
from bakery.planning.published import unpublished_message
from bakery.store import Store


class BakeError(BakeryError):
    """The bake stopped; the message is one line (no traceback needed)."""

    def __init__(self, message: str, result: BakeResult | None = None):
        super().__init__(message)
        self.result = result


@dataclass
class StepResult:
    layer: str
    id: str
    kind: str
    seconds: float
    rows: int | None = None
    files: int | None = None
    note: str | None = None
    ok: bool = True
    rejected: int | None = None  # rows a quarantine wrote to its rejects table


@dataclass
class BakeResult:
    ok: bool
    store: str
    env: str
    layers: list[str]
    seconds: float = 0.0
    steps: list[StepResult] = field(default_factory=list)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    # per quarantined step ("layer.step"): its rejects table, rows rejected, rows by reason
    rejected: dict[str, dict[str, Any]] = field(default_factory=dict)
    # the journal of a publish that failed half-way and could not be undone: the next
    # bake rolls it forward
    unfinished_publish: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Reporter(Protocol):
    """Progress callbacks; the CLI draws them with rich, tests can ignore them."""

    def layer(self, layer: LayerPlan) -> None: ...
    def start(self, step: StepPlan) -> None: ...
    def done(self, result: StepResult) -> None: ...
    def note(self, text: str) -> None: ...


class SilentReporter:
    def layer(self, layer: LayerPlan) -> None: ...
    def start(self, step: StepPlan) -> None: ...
    def done(self, result: StepResult) -> None: ...
    def note(self, text: str) -> None: ...


def run_step(ctx: Context, step: StepPlan) -> StepOutcome:
    runner = (ctx.runners or RUNNERS).get(step.kind)
    if runner is None:
        raise StepFailed(f"step {step.qualified_id}: unknown step kind {step.kind!r}")
    try:
        ctx.refresh_views()
        # Another layer's table this step is the first to read must have been published
        # (bakery.planning.published says what that means on both back-ends).
        for reader, table in published.probe_steps(ctx, step):
            if published.unpublished(ctx, table):
                raise StepFailed(unpublished_message(reader, table))
        return runner(ctx, step, ctx.con, [])
    except StepFailed as exc:
        explained = empty_input.explained(ctx, step, str(exc))
        if explained == str(exc):
            raise
        raise StepFailed(explained) from None
    except Exception as exc:  # duckdb, pyarrow, OS errors: one line naming the step
        if _interrupted(exc):
            raise KeyboardInterrupt from None
        raise StepFailed(f"step {step.qualified_id} failed: {_one_line(exc)}") from None


def _check_inputs(ctx: Context, layer: LayerPlan) -> None:
    """Fail before the first step when an external input of the layer has no files."""
    for ref in dict.fromkeys(r for step in layer.walk() for r in step.reads):
        table = ctx.plan.table(ref)
        if table.external and not ctx.store.list(table.location):
            raise BakeError(
                f"layer {layer.name}: input table {ref} has no files at {table.location} "
                f"(store {ctx.store.description}); put the data there, or "
                + sample_data.how_to_seed(table)
            )


def _publish(ctx: Context, layer: LayerPlan, result: BakeResult, reporter: Reporter) -> None:
    plan = publish_plan(layer)
    unplanned = sorted(set(ctx.staging.exports) - {e.step for e in plan.exports})
    if unplanned:  # the engine stages only what the plan says: a bug, never bad input
        raise BakeError(f"layer {layer.name}: {', '.join(unplanned)} staged outside its plan")
    # A table the plan stages that no step staged here (a Lambda run without its database
    # reuses the published files) keeps its published version.
    refs = [ref for ref in plan.table_refs if ref in ctx.staging.staged]
    try:
        moved = ctx.staging.publish(refs)
    except publish.PublishFailed as exc:
        result.unfinished_publish = ctx.staging.pending
        raise BakeError(f"layer {layer.name}: {exc}") from None
    except KeyboardInterrupt:  # the report must not say "unchanged" when it is not
        if ctx.staging.published_when_interrupted:
            reporter.note(f"published {', '.join(ctx.staging.published_when_interrupted)}")
        elif ctx.staging.pending is not None:
            reporter.note(
                "publishing stopped half-way; the next bake finishes it "
                f"(journal {ctx.staging.pending})"
            )
        raise
    if moved:
        reporter.note(f"published {', '.join(moved)}")
    published = [ref for ref in moved if ref in ctx.plan.tables]
    for note in ctx.staging.finish():
        result.notes.append(note)
        reporter.note(note)
    try:
        ctx.refresh_views()
        for ref in published:
            table = ctx.plan.table(ref)
            rows = ctx.con.execute(
                f"SELECT count(*) FROM {duck.ident(table.glue_database)}.{duck.ident(table.name)}"
            ).fetchone()[0]
            files = len(ctx.store.list(table.location))
            result.tables[ref] = {"rows": rows, "files": files, "location": table.location}
    except Exception as exc:  # noqa: BLE001 - duckdb, OS errors
        if _interrupted(exc):
            raise KeyboardInterrupt from None
        raise BakeError(
            f"layer {layer.name}: published, but counting the published rows failed: "
            f"{_one_line(exc)}"
        ) from None


def _discard(staging: publish.Staging, result: BakeResult) -> None:
    """Drop this run's staging; a failure to clean up loses nothing (the next bake
    removes leftovers), so it never hides the bake's own outcome."""
    try:
        staging.discard()
    except Exception as exc:  # noqa: BLE001 - OS errors, S3 errors (botocore, PurgeError)
        result.notes.append(
            f"could not remove this bake's staging ({_one_line(exc)}); the next bake does"
        )


def bake(
    plan: Plan,
    layers: list[str],
    store: Store,
    *,
    with_upstream: bool = False,
    reporter: Reporter | None = None,
    ee_dsn: str | None = None,
    s3_endpoint: str | None = None,
    threads: int | None = None,
    memory_limit: str | None = None,
    con: Any = None,
    runners: Callable[[Context], AbstractContextManager[dict[str, Any]]] | None = None,
) -> BakeResult:
    """Bake `layers` (and, with_upstream, what they depend on) into `store`.

    Raises BakeError when a step or check fails: the failing layer's published tables
    and files are then unchanged (layers before it that succeeded stay published).
    s3_endpoint defaults to the store's own endpoint when the store is an S3Store.
    con: a DuckDB connection from duck.connect() to reuse (layer tests run many small
    bakes on one); the caller closes it.
    """
    own = con is None
    reporter = reporter or SilentReporter()
    if s3_endpoint is None and not store.is_local:
        s3_endpoint = getattr(store, "endpoint", None)
    order = (
        plan.upstream(layers)
        if with_upstream
        else [ly for ly in plan.layers if ly.name in set(layers)]
    )
    started = time.perf_counter()
    result = BakeResult(
        ok=False, store=store.description, env=plan.env, layers=[ly.name for ly in order]
    )
    run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    staging = publish.Staging(store, plan, run_id)
    backends = contextlib.ExitStack()
    try:
        staging.acquire()
    except publish.StoreBusy as exc:
        raise BakeError(str(exc)) from None
    try:
        for note in staging.recover():
            result.notes.append(note)
            reporter.note(note)
        if own:
            try:
                con = duck.connect(
                    s3_endpoint=s3_endpoint,
                    threads=threads,
                    memory_limit=memory_limit,
                    temp_directory=duck.spill_directory(staging),
                )
            except Exception as exc:  # noqa: BLE001 - duckdb raises several kinds
                raise BakeError(
                    f"could not start DuckDB: {_one_line(exc)}; check BAKERY_THREADS and "
                    "BAKERY_MEMORY_LIMIT (e.g. BAKERY_MEMORY_LIMIT=2GB)"
                ) from None
        ctx = Context(plan, store, con, staging, ee_dsn)
        if runners is not None:  # another engine's step runners (bakery.trino.steps.session)
            ctx.runners = backends.enter_context(runners(ctx))
        for layer in order:
            reporter.layer(layer)
            _check_inputs(ctx, layer)
            for step in layer.steps:
                reporter.start(step)
                t0 = time.perf_counter()
                try:
                    outcome = run_step(ctx, step)
                except StepFailed as exc:
                    failed = StepResult(
                        layer.name, step.id, step.kind, time.perf_counter() - t0, ok=False
                    )
                    failed.note = str(exc)
                    result.steps.append(failed)
                    reporter.done(failed)
                    raise BakeError(str(exc)) from None
                step_result = StepResult(
                    layer.name,
                    step.id,
                    step.kind,
                    time.perf_counter() - t0,
                    outcome.rows,
                    outcome.files,
                    outcome.note,
                )
                quarantined = outcome.extra.get("quarantine")
                if quarantined is not None:
                    step_result.rejected = quarantined["rows"]
                    result.rejected[step.qualified_id] = quarantined
                result.steps.append(step_result)
                reporter.done(step_result)
                pause(step)
            _publish(ctx, layer, result, reporter)
        result.ok = True
        _discard(staging, result)
        return result
    except BakeError as exc:
        result.error = str(exc)
        _discard(staging, result)
        raise BakeError(str(exc), result) from None
    except BaseException:
        _discard(staging, result)
        raise
    finally:
        result.seconds = time.perf_counter() - started
        backends.close()
        if own and con is not None:
            con.close()
        staging.release()
