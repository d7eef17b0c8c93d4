"""How a layer is staged and published, decided once for both back-ends.

Every table the layer writes, whoever writes it (a query, a geo_join, a Lambda, a purge),
and every export_by_key destination is staged: built beside the live objects while the
layer runs. The checks (spec'd and implied: unique_by, vanish guards, quarantine checks)
and the exports read the staged tables. The layer publishes at one point only: after its
last step, so after every check passed and every export wrote all its files. The local
engine (bakery.engine.publish) and the compiled state machine (bakery.compile.
publish_states) both read this plan; neither decides on its own what to stage.

A layer whose step order makes that impossible is refused by validate (`order_problems`):
a step that writes a table after an export read it would publish a table the exported
files do not match.
"""

from __future__ import annotations

from dataclasses import dataclass

from bakery.planning.model import LayerPlan, StepPlan


@dataclass(frozen=True)
class StagedTable:
    ref: str  # "layer.table"
    writers: tuple[str, ...]  # qualified ids of the steps that write it, in order


@dataclass(frozen=True)
class StagedExport:
    step: str  # qualified id of the export_by_key step
    step_id: str
    table: str  # the ref it reads (staged when this layer writes it)
    destination: str  # the live prefix its files are published to
    delete_stale: bool  # publish deletes the live <KEY>.parquet files it did not write


@dataclass(frozen=True)
class PublishPlan:
    layer: str
    tables: tuple[StagedTable, ...]
    exports: tuple[StagedExport, ...]
    guards: tuple[str, ...]  # qualified ids of the checks that pass before publishing
    # The publish point: after the last top-level step (its id), or "" for a layer of no step.
    after: str

    @property
    def table_refs(self) -> list[str]:
        return [t.ref for t in self.tables]

    def stages(self, ref: str) -> bool:
        return any(t.ref == ref for t in self.tables)


def publish_plan(layer: LayerPlan) -> PublishPlan:
    """The publish plan of `layer` (a pure function of its planned steps)."""
    writers: dict[str, list[str]] = {}
    exports: list[StagedExport] = []
    guards: list[str] = []
    for step in layer.walk():
        for ref in step.writes:
            writers.setdefault(ref, [])
            if step.qualified_id not in writers[ref]:
                writers[ref].append(step.qualified_id)
        if step.kind == "check":
            guards.append(step.qualified_id)
        if step.kind == "export_by_key" and step.reads and step.location:
            exports.append(
                StagedExport(
                    step=step.qualified_id,
                    step_id=step.id,
                    table=step.reads[0],
                    destination=step.location,
                    delete_stale=bool(getattr(step, "delete_stale", True)),
                )
            )
    return PublishPlan(
        layer=layer.name,
        tables=tuple(StagedTable(ref, tuple(w)) for ref, w in writers.items()),
        exports=tuple(exports),
        guards=tuple(guards),
        after=layer.steps[-1].id if layer.steps else "",
    )


def _overlap(a: str, b: str) -> bool:
    return a.startswith(b) or b.startswith(a)


def order_problems(steps: list[StepPlan]) -> list[tuple[str, str]]:
    """(top-level step id, one-line problem) for each order that no single publish point
    after every check and export can honour."""
    out: list[tuple[str, str]] = []
    exported: dict[str, str] = {}  # table ref -> the id of the first export that read it
    destinations: dict[str, str] = {}  # destination -> export id
    for step in steps:
        for sub in [step, *step.children]:
            for ref in sub.writes:
                if ref in exported and sub.kind not in ("refresh_partitions",):
                    out.append(
                        (
                            step.id,
                            f"step {sub.id} writes {ref} after export {exported[ref]} read it: "
                            "the layer publishes once, after its last step, so the exported "
                            f"files would not match the published table; move {sub.id} "
                            f"before {exported[ref]}",
                        )
                    )
        if step.kind == "export_by_key" and step.reads and step.location:
            clash = next((d for d in destinations if _overlap(d, step.location)), None)
            if clash is not None:
                out.append(
                    (
                        step.id,
                        f"export {step.id} writes under {step.location}, which overlaps the "
                        f"destination of export {destinations[clash]} ({clash}): both are "
                        "staged and published as one folder each; give them separate "
                        "destinations",
                    )
                )
            destinations.setdefault(step.location, step.id)
            exported.setdefault(step.reads[0], step.id)
    return out
