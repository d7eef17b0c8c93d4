"""The plan: layers resolved for one environment, the single input of every back-end.

Locations are rendered, table references resolved across layers, query templates
rendered to Athena SQL and checked with sqlglot against the declared schemas,
and layers put in dependency order. Everything wrong is collected and raised
together as one SpecError.

The work is split along its seams in `bakery.planning`: the model (`model`),
reference resolution (`references`), SQL rendering and analysis (`sql_analysis`,
where `bakery.sql.analyse` is called), the per-layer passes (`builder`, each step
by its kind's builder in `bakery.kinds`) and the whole-project passes (`passes`:
dependency order, overlapping locations). This module runs them in order.
"""

from __future__ import annotations

from bakery.errors import SpecError
from bakery.lambdas import s3uri
from bakery.planning import aws_names, passes
from bakery.planning.builder import Builder
from bakery.planning.model import (
    LIVE_CATALOG,
    RESERVED_PREFIX,
    SEGMENT,
    LayerPlan,
    Plan,
    StepPlan,
    TablePlan,
    unsafe_location,
)
from bakery.workspace import LayerFile, Workspace

__all__ = [
    "LIVE_CATALOG",
    "RESERVED_PREFIX",
    "SEGMENT",
    "Builder",
    "LayerPlan",
    "Plan",
    "StepPlan",
    "TablePlan",
    "build_plan",
    "unsafe_location",
]


def build_plan(ws: Workspace, env: str, *, check_sql: bool = True) -> Plan:
    """Resolve the workspace for one environment; raise SpecError listing every problem."""
    if env not in ws.project.environments:
        known = ", ".join(ws.project.environments)
        raise SpecError(
            [ws.project_doc.problem(("environments",), f"unknown environment {env!r}; use {known}")]
        )
    builder = Builder(ws, env, check_sql)
    results = builder.project.athena.results  # this environment's ({{ env }} filled in)
    try:
        results_prefix = s3uri.split(results)[1]
        why = unsafe_location(results_prefix) if results_prefix.strip("/") else "it has no prefix"
    except ValueError:
        why = "it is not an s3://bucket/prefix/ location"
    if why:
        builder.problem(ws.project_doc, ("athena", "results"), f"{results!r}: {why}")
    names: dict[str, LayerFile] = {}
    for lf in ws.layers:
        if lf.spec.name in names:
            builder.problem(
                lf.doc,
                ("name",),
                f"layer {lf.spec.name!r} is also defined in {names[lf.spec.name].doc.file}",
            )
        names[lf.spec.name] = lf
        if lf.path.stem != lf.spec.name:
            builder.problem(
                lf.doc,
                ("name",),
                f"layer name {lf.spec.name!r} must match its file name {lf.path.stem!r}",
            )
    builder.declare_tables()
    layers = [builder.build_layer(lf) for lf in ws.layers]
    layers = passes.order_layers(builder, layers)
    passes.check_locations(builder, layers)
    aws_names.check(builder, layers)
    if builder.problems:
        raise SpecError(builder.problems)
    return Plan(builder.project, env, ws.root, layers, builder.tables)
