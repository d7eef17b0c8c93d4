"""The dependency graph of every layer as a model (clusters, nodes, edges), built from the
plan in plan order. `bakery.graph` writes it out as DOT or Mermaid and draws it.

Node ids are derived from names, never from memory addresses or hash order, so the
same specs always give the same model and so the same text byte for byte.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bakery.lambdas import s3uri


@dataclass
class Node:
    id: str
    kind: str  # a step kind, "table", "prefix", "trigger", "queue"
    title: str
    detail: list[str] = field(default_factory=list)
    tooltip: str = ""
    external: bool = False


@dataclass
class Edge:
    tail: str
    head: str
    kind: str  # "reads", "writes", "purges", "refreshes", "next", "lives_at", "exports", "trigger"
    cross_layer: bool = False
    tooltip: str = ""


@dataclass
class Cluster:
    id: str
    label: str
    tooltip: str
    nodes: list[str] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)
    style: str = "layer"  # "layer", "for_each", "bucket"
    note: str = ""


@dataclass
class Graph:
    env: str
    nodes: dict[str, Node] = field(default_factory=dict)
    clusters: list[Cluster] = field(default_factory=list)
    loose: list[str] = field(default_factory=list)  # nodes outside every cluster
    edges: list[Edge] = field(default_factory=list)

    def add(self, node: Node) -> str:
        self.nodes.setdefault(node.id, node)
        return node.id

    def edge(self, edge: Edge) -> None:
        key = (edge.tail, edge.head, edge.kind)
        if all((e.tail, e.head, e.kind) != key for e in self.edges):
            self.edges.append(edge)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_")


def table_id(ref: str) -> str:
    return "t_" + "__".join(_slug(part) for part in ref.split("."))


def step_id(layer: str, *ids: str) -> str:
    return "s_" + "__".join(_slug(part) for part in (layer, *ids))


def _partitions(table: Any) -> str:
    keys = ", ".join(k.name for k in table.partition_keys)
    return f"partitioned by {keys}" if keys else "not partitioned"


def _table_tooltip(table: Any) -> str:
    lines = [f"{table.glue_name}: {table.description or 'no description'}"]
    for col in table.columns:
        lines.append(
            f"{col.name} {col.type}" + (f" - {col.description}" if col.description else "")
        )
    for col in table.partition_keys:
        lines.append(
            f"{col.name} {col.type} (partition)"
            + (f" - {col.description}" if col.description else "")
        )
    return "\n".join(lines)


def _step_detail(step: Any) -> list[str]:
    detail = [step.kind]
    if step.over_values:
        values = step.over_values
        shown = ", ".join(values) if len(values) <= 4 else f"{values[0]}..{values[-1]}"
        names = ", ".join(step.over_params)
        detail.append(
            f"x{len(values)} over {names} {shown}, {step.max_concurrency} at once"
            if step.max_concurrency
            else f"x{len(values)} over {names} {shown}"
        )
    elif step.over_sql:
        detail.append(f"per row of a query, {step.max_concurrency} at once")
    return detail


def _step_tooltip(step: Any) -> str:
    if step.description:
        return f"{step.qualified_id} ({step.kind}): {step.description}"
    parts = []
    if step.reads:
        parts.append("reads " + ", ".join(dict.fromkeys(step.reads)))
    if step.writes:
        verb = "empties" if step.kind == "purge_prefix" else "writes"
        parts.append(f"{verb} " + ", ".join(dict.fromkeys(step.writes)))
    return f"{step.qualified_id} ({step.kind})" + (": " + "; ".join(parts) if parts else "")


def build_graph(plan: Any) -> Graph:
    """The graph model of every layer of `plan`, in plan order."""
    g = Graph(env=plan.env)
    prefixes: dict[tuple[str, str], str] = {}  # (bucket, prefix) -> node id
    first: dict[str, str] = {}
    last: dict[str, str] = {}

    def prefix_node(location: str) -> str:
        key = s3uri.split(location)
        if key not in prefixes:
            prefixes[key] = "p_" + _slug(f"{key[0]}/{key[1]}")
        return prefixes[key]

    for layer in plan.layers:
        cluster = Cluster(
            id="cluster_" + _slug(layer.name),
            label=layer.name,
            tooltip=layer.description,
            note=", ".join(
                (["singleton"] if layer.singleton else [])
                + [f"timeout {layer.timeout_minutes} min"]
                + ([] if layer.triggers.schedule or layer.triggers.events else ["started by hand"])
            ),
        )
        g.clusters.append(cluster)
        for table in layer.tables:
            tid = g.add(
                Node(
                    id=table_id(table.ref),
                    kind="table",
                    title=table.name,
                    detail=[
                        table.format + (", external: made elsewhere" if table.external else ""),
                        _partitions(table),
                    ],
                    tooltip=_table_tooltip(table),
                    external=table.external,
                )
            )
            cluster.nodes.append(tid)
            g.edge(Edge(tid, prefix_node(table.location), "lives_at", tooltip=f"{table.location}"))

        # Entry points: schedule and events, through the FIFO queue when there is one.
        triggers = layer.triggers
        entry: list[str] = []
        if triggers.schedule:
            entry.append(
                g.add(
                    Node(
                        id=f"trigger_{_slug(layer.name)}_schedule",
                        kind="trigger",
                        title="schedule",
                        detail=[triggers.schedule],
                        tooltip=f"EventBridge schedule starting {layer.name}",
                    )
                )
            )
        for event in triggers.events:
            entry.append(
                g.add(
                    Node(
                        id=f"trigger_{_slug(layer.name)}_event_{_slug(event)}",
                        kind="trigger",
                        title="event",
                        detail=[event],
                        tooltip=f"EventBridge events with detail-type {event} start {layer.name}",
                    )
                )
            )
        if entry:
            queue = g.add(
                Node(
                    id=f"queue_{_slug(layer.name)}",
                    kind="queue",
                    title="FIFO queue",
                    detail=[f"{triggers.delay_seconds} s delay"],
                    tooltip="Content-based de-duplication and a delivery delay: "
                    "a burst of triggers causes one run.",
                )
            )
            for node in entry:
                g.loose.append(node)
                g.edge(Edge(node, queue, "trigger"))
            g.loose.append(queue)
            entry = [queue]

        previous: str | None = None
        for number, step in enumerate(layer.steps, 1):
            sid = _add_step(g, cluster, layer.name, step, number, prefix_node, plan)
            if previous is None:
                for node in entry:
                    g.edge(Edge(node, sid, "trigger", tooltip=f"starts {layer.name}"))
            else:
                g.edge(Edge(previous, sid, "next"))
            previous = _last_of(layer.name, step)
            first.setdefault(layer.name, sid)
            last[layer.name] = previous
        # Draw a layer below the layers it depends on (an invisible edge: layout only).
        for dep in layer.depends_on:
            if dep in last and layer.name in first:
                g.edge(Edge(last[dep], first[layer.name], "order"))

    for (bucket, prefix), pid in sorted(prefixes.items()):
        bucket_cluster = next(
            (c for c in g.clusters if c.id == "cluster_s3_" + _slug(bucket)), None
        )
        if bucket_cluster is None:
            alias = next((a for a, b in plan.project.buckets.items() if b == bucket), bucket)
            bucket_cluster = Cluster(
                id="cluster_s3_" + _slug(bucket),
                label=f"s3://{bucket}",
                tooltip=f"bucket {alias}: {bucket} (imported, never created or deleted)",
                style="bucket",
            )
            g.clusters.append(bucket_cluster)
        g.add(
            Node(id=pid, kind="prefix", title=prefix, detail=[], tooltip=f"s3://{bucket}/{prefix}")
        )
        bucket_cluster.nodes.append(pid)
    return g


def _last_of(layer: str, step: Any) -> str:
    if step.children:
        return step_id(layer, step.id, step.children[-1].id)
    return step_id(layer, step.id)


def _add_step(
    g: Graph, cluster: Cluster, layer: str, step: Any, number: int, prefix_node, plan: Any
) -> str:
    sid = g.add(
        Node(
            id=step_id(layer, step.id),
            kind=step.kind,
            title=f"{number}. {step.id}",
            detail=_step_detail(step),
            tooltip=_step_tooltip(step),
        )
    )
    _data_edges(g, layer, step, sid, plan)
    if step.kind == "export_by_key" and step.location:
        g.edge(Edge(sid, prefix_node(step.location), "exports", tooltip=step.location))
    if not step.children:
        cluster.nodes.append(sid)
        return sid
    inner = Cluster(
        id=f"cluster_{_slug(layer)}__{_slug(step.id)}",
        label=f"for each ({step.max_concurrency} at once)",
        tooltip=step.description or "",
        nodes=[sid],
        style="for_each",
    )
    cluster.clusters.append(inner)
    previous = sid
    for sub_number, child in enumerate(step.children, 1):
        cid = g.add(
            Node(
                id=step_id(layer, step.id, child.id),
                kind=child.kind,
                title=f"{number}.{sub_number}. {child.id}",
                detail=_step_detail(child),
                tooltip=_step_tooltip(child),
            )
        )
        inner.nodes.append(cid)
        _data_edges(g, layer, child, cid, plan)
        g.edge(Edge(previous, cid, "next"))
        previous = cid
    return sid


def _data_edges(g: Graph, layer: str, step: Any, sid: str, plan: Any) -> None:
    reads = list(dict.fromkeys(step.reads))
    writes = list(dict.fromkeys(step.writes))
    for ref in reads:
        if step.kind == "refresh_partitions" and ref in writes:
            continue
        cross = plan.tables[ref].layer != layer
        g.edge(
            Edge(
                table_id(ref),
                sid,
                "reads",
                cross_layer=cross,
                tooltip=f"{layer}.{step.id} reads {ref}",
            )
        )
    for ref in writes:
        kind = {"purge_prefix": "purges", "refresh_partitions": "refreshes"}.get(
            step.kind, "writes"
        )
        g.edge(Edge(sid, table_id(ref), kind, tooltip=f"{layer}.{step.id} {kind} {ref}"))
