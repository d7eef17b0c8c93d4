"""Passes over the whole project once every layer is planned: the layers' dependency
order (declared and inferred from the tables read) and locations that overlap."""

from __future__ import annotations

import graphlib
from typing import TYPE_CHECKING

from bakery import spec as s
from bakery.loader import Document
from bakery.planning.model import LayerPlan
from bakery.planning.references import _suggest

if TYPE_CHECKING:
    from bakery.planning.builder import Builder


def order_layers(builder: Builder, layers: list[LayerPlan]) -> list[LayerPlan]:
    by_name = {layer.name: layer for layer in layers}
    docs = {lf.spec.name: lf for lf in builder.ws.layers}
    for layer in layers:
        lf = docs[layer.name]
        deps: list[str] = []
        for j, dep in enumerate(lf.spec.depends_on):
            if dep not in by_name:
                builder.problem(
                    lf.doc,
                    ("depends_on", j),
                    f"unknown layer {dep!r}{_suggest(dep, builder.layer_names)}",
                )
            elif dep == layer.name:
                builder.problem(lf.doc, ("depends_on", j), "a layer cannot depend on itself")
            else:
                deps.append(dep)
        for step in layer.walk():
            for ref in step.reads:
                owner = builder.tables[ref].layer
                if owner != layer.name and owner not in deps:
                    deps.append(owner)
        layer.depends_on = sorted(deps)
    sorter = graphlib.TopologicalSorter({ly.name: ly.depends_on for ly in layers})
    try:
        order = list(sorter.static_order())
    except graphlib.CycleError as exc:
        cycle = exc.args[1]
        first = docs[cycle[0]]
        builder.problem(
            first.doc,
            ("depends_on",) if first.spec.depends_on else ("name",),
            f"layers depend on each other in a cycle: {' -> '.join(cycle)}; "
            "break it by removing one dependency or moving a table",
        )
        return layers
    return [by_name[name] for name in order]


def check_locations(builder: Builder, layers: list[LayerPlan]) -> None:
    places: list[tuple[str, str, Document, tuple]] = []
    for ref, (doc, path) in builder.table_paths.items():
        places.append((builder.tables[ref].location, f"table {ref}", doc, path))
    docs = {lf.spec.name: lf for lf in builder.ws.layers}
    for layer in layers:
        for i, st in enumerate(docs[layer.name].spec.steps):
            if isinstance(st, s.ExportByKey):
                plan = next((p for p in layer.steps if p.id == st.id), None)
                if plan and plan.location:
                    places.append(
                        (
                            plan.location,
                            f"export {layer.name}.{st.id}",
                            docs[layer.name].doc,
                            ("steps", i, "destination"),
                        )
                    )
    for a in range(len(places)):
        for b in range(len(places)):
            if a == b:
                continue
            loc_a, what_a, doc_a, path_a = places[a]
            loc_b, what_b, _, _ = places[b]
            if loc_a == loc_b and a > b:
                builder.problem(doc_a, path_a, f"{what_b} already lives at {loc_a}")
            elif loc_a != loc_b and loc_a.startswith(loc_b):
                builder.problem(
                    doc_a,
                    path_a,
                    f"{loc_a} is inside the location of {what_b} ({loc_b}); "
                    "Athena would read these files as part of it",
                )
