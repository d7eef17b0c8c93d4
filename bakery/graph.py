"""The dependency graph of every layer, drawn: DOT text, Mermaid and PNG/SVG.

The model (clusters, nodes, edges) is built from the plan by `bakery.graph_model`;
this module writes it out as DOT or as a Mermaid flowchart, byte for byte the same
for the same specs: the committed `docs/databaker.dot` can be compared with a fresh
one to tell whether `databaker.png` is stale.

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
from dataclasses import dataclass
from pathlib import Path

from bakery.graph_model import (  # noqa: F401 (re-exported)
    Cluster,
    Edge,
    Graph,
    Node,
    build_graph,
    step_id,
    table_id,
)


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
