"""The dependency graph of every layer, drawn from the plan: DOT text and Mermaid.

One model (clusters, nodes, edges) is built from the plan in plan order, then
written out as DOT or as a Mermaid flowchart. Node ids are derived from names,
never from memory addresses or hash order, so the same specs always give the
same text byte for byte: the committed `docs/databaker.dot` can be compared
with a fresh one to tell whether `databaker.png` is stale.

Rendering DOT to PNG/SVG needs pygraphviz (its wheel bundles Graphviz); it is
imported only in `render`.
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bakery.lambdas import s3uri


@dataclass(frozen=True)
class KindStyle:
    """How a step kind is drawn: DOT shape, fill and style; Mermaid's node brackets."""

    shape: str
    fill: str
    mermaid: tuple[str, str]
    # Extra box styles where the shape alone is a plain box (wide polygons would not fit).
    style: str = "filled"


# The graph back-end's table: one style per kind (tests/spec/test_kinds.py checks it
# covers every registered kind).
KIND_STYLE: dict[str, KindStyle] = {
    "purge_prefix": KindStyle("box", "#fde2e1", ("[\\", "/]"), "filled,dashed"),
    "athena_query": KindStyle("box", "#dbeafe", ("[", "]"), "rounded,filled"),
    "geo_join": KindStyle("box3d", "#d1fae5", ("[[", "]]")),
    "check": KindStyle("box", "#fef3c7", ("{{", "}}"), "filled,diagonals"),
    "for_each": KindStyle("box", "#e0e7ff", ("[[", "]]"), "rounded,filled,bold"),
    "export_by_key": KindStyle("tab", "#fce7f3", ("[/", "\\]")),
    "lambda": KindStyle("component", "#ede9fe", ("[/", "/]")),
    "refresh_partitions": KindStyle("cds", "#e5e7eb", ("([", "])")),
}
CROSS_LAYER = "#c2410c"  # edges that cross layers stand out
FONT = "Helvetica"


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
                + [f"timeout {layer.spec.timeout_minutes} min"]
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


# ------------------------------------------------------------------ DOT


def _q(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def _label(node: Node) -> str:
    title = node.title
    if node.kind == "prefix":
        parts = _wrap(title, r"[^/]*/|[^/]+$", 28)
    else:
        parts = ["<b>" + "<br/>".join(_wrap(title, r"[^_]*_|[^_]+$", 30)) + "</b>"]
    parts += [f'<font point-size="10">{_h(line)}</font>' for line in node.detail]
    return "<" + "<br/>".join(parts) + ">"


def _wrap(text: str, pieces: str, width: int) -> list[str]:
    """A long name or S3 prefix on a few lines, broken after '_' or '/'."""
    lines = [""]
    for part in re.findall(pieces, text):
        if lines[-1] and len(lines[-1]) + len(part) > width:
            lines.append("")
        lines[-1] += part
    return [_h(line) for line in lines]


def _node_attrs(node: Node) -> dict[str, str]:
    attrs: dict[str, str] = {"label": _label(node), "tooltip": _q(node.tooltip or node.title)}
    if node.kind in KIND_STYLE:
        kind = KIND_STYLE[node.kind]
        attrs.update(shape=kind.shape, fillcolor=_q(kind.fill), style=_q(kind.style))
    elif node.kind == "table":
        attrs.update(
            shape="cylinder",
            margin=_q("0.14,0.1"),
            fillcolor=_q("#ffffff" if node.external else "#cffafe"),
            style=_q("filled,dashed" if node.external else "filled"),
        )
    elif node.kind == "prefix":
        attrs.update(shape="folder", fillcolor=_q("#f8fafc"), style=_q("filled"), fontsize="11")
    elif node.kind == "trigger":
        attrs.update(shape="box", style=_q("rounded,filled,bold"), fillcolor=_q("#fef9c3"))
    elif node.kind == "queue":
        attrs.update(shape="box", style=_q("rounded,filled"), fillcolor=_q("#f1f5f9"))
    return attrs


EDGE_STYLE: dict[str, dict[str, str]] = {
    "reads": {"color": _q("#1d4ed8")},
    "writes": {"color": _q("#15803d"), "penwidth": "1.6"},
    "purges": {"color": _q("#b91c1c"), "style": "dashed", "arrowhead": "tee"},
    "refreshes": {"color": _q("#6b7280"), "dir": "both", "arrowsize": "0.6"},
    "next": {"color": _q("#9ca3af"), "style": "bold", "weight": "4", "arrowhead": "vee"},
    "lives_at": {"color": _q("#94a3b8"), "style": "dotted", "arrowhead": "none"},
    "exports": {"color": _q("#be185d"), "penwidth": "1.6"},
    "trigger": {"color": _q("#a16207"), "style": "bold"},
    "order": {"style": "invis", "weight": "2"},
}


def _attrs(attrs: dict[str, str]) -> str:
    return "[" + ", ".join(f"{k}={v}" for k, v in attrs.items()) + "]"


def to_dot(g: Graph, rankdir: str = "TB") -> str:
    """Deterministic DOT text of the graph."""
    out = [
        "digraph databaker {",
        f"  graph [rankdir={rankdir}, fontname={_q(FONT)}, fontsize=16, newrank=true, "
        'nodesep=0.25, ranksep=0.35, bgcolor="white", '
        f"label={_title(g.env)}, labelloc=t];",
        f'  node [fontname={_q(FONT)}, fontsize=12, margin="0.12,0.04", height=0.3];',
        f"  edge [fontname={_q(FONT)}, fontsize=10, arrowsize=0.7];",
    ]
    for cluster in g.clusters:
        out += _cluster_dot(g, cluster, "  ")
    for nid in g.loose:
        out.append(f"  {nid} {_attrs(_node_attrs(g.nodes[nid]))};")
    for edge in g.edges:
        attrs = dict(EDGE_STYLE[edge.kind])
        if edge.kind == "refreshes" or edge.kind == "lives_at":
            attrs["constraint"] = "false" if edge.kind == "refreshes" else "true"
        if edge.cross_layer:
            attrs.update(color=_q(CROSS_LAYER), penwidth="2.2")
        if edge.tooltip:
            attrs["tooltip"] = _q(edge.tooltip)
        out.append(f"  {edge.tail} -> {edge.head} {_attrs(attrs)};")
    out.append("}")
    return "\n".join(out) + "\n"


def _title(env: str) -> str:
    key = (
        '<font color="#1d4ed8">reads</font> &#183; <font color="#15803d">writes</font> &#183; '
        '<font color="#b91c1c">purges</font> &#183; <font color="#9ca3af">next step</font> '
        f'&#183; <font color="{CROSS_LAYER}">crosses layers</font> &#183; '
        "dotted: lives at (S3 prefixes for " + _h(env) + ")"
    )
    return f'<<b>bakery layers</b><br/><font point-size="12">{key}</font>>'


def _cluster_dot(g: Graph, cluster: Cluster, indent: str) -> list[str]:
    style = {
        "layer": 'style="rounded,filled", fillcolor="#f8fafc", color="#334155", penwidth=1.5, '
        "labeljust=l, fontsize=18",
        "for_each": 'style="dashed", color="#4338ca", fontsize=12',
        "bucket": 'style="rounded,filled", fillcolor="#fff7ed", color="#c2410c", fontsize=14',
    }[cluster.style]
    if cluster.style == "layer":
        label = f"<<b>{_h(cluster.label)}</b>"
        if cluster.note:
            label += f'<br/><font point-size="11">{_h(cluster.note)}</font>'
        label += ">"
    else:
        label = _q(cluster.label)
    out = [
        f"{indent}subgraph {cluster.id} {{",
        f"{indent}  graph [label={label}, tooltip={_q(cluster.tooltip or cluster.label)}, "
        f"{style}];",
    ]
    for nid in cluster.nodes:
        out.append(f"{indent}  {nid} {_attrs(_node_attrs(g.nodes[nid]))};")
    for inner in cluster.clusters:
        out += _cluster_dot(g, inner, indent + "  ")
    out.append(f"{indent}}}")
    return out


# ------------------------------------------------------------------ Mermaid


def _m(text: str) -> str:
    return text.replace('"', "#quot;")


def to_mermaid(g: Graph) -> str:
    """A Mermaid flowchart of the same graph (renders in GitHub Markdown)."""
    out = ["flowchart TB"]

    def node_line(node: Node) -> str:
        title = node.title
        text = "<br/>".join([f"<b>{title}</b>" if node.kind != "prefix" else title, *node.detail])
        if node.kind in KIND_STYLE:
            left, right = KIND_STYLE[node.kind].mermaid
        elif node.kind == "table":
            left, right = "[(", ")]"
        elif node.kind == "prefix":
            left, right = ">", "]"
        else:
            left, right = "([", "])"
        return f'{node.id}{left}"{_m(text)}"{right}'

    def cluster_lines(cluster: Cluster, indent: str) -> list[str]:
        lines = [f'{indent}subgraph {cluster.id}["{_m(cluster.label)}"]']
        for nid in cluster.nodes:
            lines.append(f"{indent}  {node_line(g.nodes[nid])}")
        for inner in cluster.clusters:
            lines += cluster_lines(inner, indent + "  ")
        lines.append(f"{indent}end")
        return lines

    for cluster in g.clusters:
        out += cluster_lines(cluster, "  ")
    for nid in g.loose:
        out.append(f"  {node_line(g.nodes[nid])}")
    arrows = {
        "reads": "-->",
        "writes": "==>",
        "purges": "-.-x",
        "refreshes": "<-.->",
        "next": "-->",
        "lives_at": "---",
        "exports": "==>",
        "trigger": "==>",
        "order": "~~~",
    }
    cross = []
    for i, edge in enumerate(g.edges):
        out.append(f"  {edge.tail} {arrows[edge.kind]} {edge.head}")
        if edge.cross_layer:
            cross.append(str(i))
    if cross:
        out.append(f"  linkStyle {','.join(cross)} stroke:{CROSS_LAYER},stroke-width:3px")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ rendering


def render(dot: str, path: Path, fmt: str) -> None:
    """Draw DOT text to a PNG or SVG file with the Graphviz bundled in pygraphviz."""
    import pygraphviz

    graph = pygraphviz.AGraph(string=dot)
    with _quiet_fontconfig():
        graph.draw(str(path), format=fmt, prog="dot")


@contextlib.contextmanager
def _quiet_fontconfig():
    """Drop the bundled fontconfig's warnings about the system's config; keep the rest."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            for line in tmp.read().decode(errors="replace").splitlines():
                if line.strip() and not line.startswith("Fontconfig warning"):
                    print(line, file=sys.stderr)
