"""`bakery graph`: the DOT drawn from the plan of the tests' project (two layers), and the
staleness check of the repository's committed picture (whatever its layers)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pygraphviz
import pytest
from typer.testing import CliRunner

from bakery.cli.common import app
from bakery.graph import build_graph, to_dot, to_mermaid

REPO = Path(__file__).resolve().parents[2]

runner = CliRunner()

ADDRESSBASE_STEPS = [
    "empty_partitioned",
    "partition_addressbase",
    "refresh_addressbase_partitioned",
    "one_addressbase_source",
    "same_uprns_as_raw",
]
CURRENT_ELECTIONS_STEPS = [
    "empty_joined",
    "export_ballots",
    "join_ballots_to_addresses",
    "refresh_current_ballots_joined_to_address_base",
    "one_addressbase_source",
    "same_uprns_as_raw",
    "export_outcodes_unique",
    "export_outcodes_not_vanished",
    "export_outcodes",
]
TABLES = {
    "addressbase": ["addressbase_cleaned_raw", "addressbase_partitioned"],
    "current_elections": ["current_ballots", "current_ballots_joined_to_address_base"],
}


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def dot(plan) -> str:
    return to_dot(build_graph(plan))


@pytest.fixture(scope="module")
def agraph(dot) -> pygraphviz.AGraph:
    # Parsing needs only the Graphviz library bundled in the pygraphviz wheel.
    return pygraphviz.AGraph(string=dot)


def find_subgraph(graph: pygraphviz.AGraph, name: str) -> pygraphviz.AGraph | None:
    for sub in graph.subgraphs():
        if sub.name == name:
            return sub
        if (found := find_subgraph(sub, name)) is not None:
            return found
    return None


def cluster_nodes(agraph: pygraphviz.AGraph, name: str) -> set[str]:
    sub = find_subgraph(agraph, name)
    assert sub is not None, f"no {name}"
    return {str(n) for n in sub.nodes()}


def edges(agraph: pygraphviz.AGraph) -> set[tuple[str, str]]:
    return {(str(a), str(b)) for a, b in agraph.edges()}


def test_dot_is_the_same_text_every_time(plan, dot):
    assert to_dot(build_graph(plan)) == dot


def test_committed_dot_is_up_to_date(repo_plan):
    committed = (REPO / "docs" / "databaker.dot").read_text()
    assert committed == to_dot(build_graph(repo_plan)), (
        "docs/databaker.dot is stale: run `uv run bakery graph` and commit"
    )
    assert (REPO / "databaker.png").is_file()


def test_a_cluster_per_layer_with_each_step_and_table(agraph):
    for layer, steps in (
        ("addressbase", ADDRESSBASE_STEPS),
        ("current_elections", CURRENT_ELECTIONS_STEPS),
    ):
        nodes = cluster_nodes(agraph, f"cluster_{layer}")
        for step in steps:
            assert f"s_{layer}__{step}" in nodes
        for table in TABLES[layer]:
            assert f"t_{layer}__{table}" in nodes


def test_steps_are_chained_in_order_and_numbered(agraph):
    for layer, steps in (
        ("addressbase", ADDRESSBASE_STEPS),
        ("current_elections", CURRENT_ELECTIONS_STEPS),
    ):
        for number, (a, b) in enumerate(zip(steps, steps[1:], strict=False), 1):
            assert (f"s_{layer}__{a}", f"s_{layer}__{b}") in edges(agraph)
            assert f"<b>{number}. " in agraph.get_node(f"s_{layer}__{a}").attr["label"]


def test_step_shapes_follow_their_kind(agraph):
    shape = {n: agraph.get_node(n).attr["shape"] for n in agraph.nodes()}
    assert shape["s_current_elections__join_ballots_to_addresses"] == "box3d"
    assert shape["s_current_elections__export_ballots"] == "component"
    assert shape["s_current_elections__export_outcodes"] == "tab"
    assert shape["s_addressbase__refresh_addressbase_partitioned"] == "cds"
    assert "diagonals" in agraph.get_node("s_addressbase__same_uprns_as_raw").attr["style"]
    assert shape["t_addressbase__addressbase_partitioned"] == "cylinder"


def test_tables_show_format_and_partition_keys(agraph):
    label = agraph.get_node("t_addressbase__addressbase_partitioned").attr["label"]
    assert "parquet" in label and "partitioned by first_letter" in label
    raw = agraph.get_node("t_addressbase__addressbase_cleaned_raw").attr
    assert "csv, external" in raw["label"] and "dashed" in raw["style"]


def test_data_edges_go_table_step_table(agraph):
    e = edges(agraph)
    assert ("t_addressbase__addressbase_cleaned_raw", "s_addressbase__partition_addressbase") in e
    assert ("s_addressbase__partition_addressbase", "t_addressbase__addressbase_partitioned") in e
    assert (
        "s_current_elections__export_ballots",
        "t_current_elections__current_ballots",
    ) in e
    assert (
        "t_current_elections__current_ballots",
        "s_current_elections__join_ballots_to_addresses",
    ) in e
    assert (
        "s_current_elections__join_ballots_to_addresses",
        "t_current_elections__current_ballots_joined_to_address_base",
    ) in e
    # A purge is drawn as a blunt red edge to the table it empties.
    purge = agraph.get_edge(
        "s_addressbase__empty_partitioned", "t_addressbase__addressbase_partitioned"
    )
    assert purge.attr["arrowhead"] == "tee"


def test_cross_layer_edges_stand_out(agraph):
    e = edges(agraph)
    cross = [
        (
            "t_addressbase__addressbase_partitioned",
            "s_current_elections__join_ballots_to_addresses",
        ),
        ("t_addressbase__addressbase_cleaned_raw", "s_current_elections__same_uprns_as_raw"),
    ]
    for tail, head in cross:
        assert (tail, head) in e
        assert agraph.get_edge(tail, head).attr["penwidth"] == "2.2"
    # Every edge between a node of one layer and a node of the other is one of these
    # (or the invisible edge that draws current_elections below addressbase).
    ab = cluster_nodes(agraph, "cluster_addressbase")
    ce = cluster_nodes(agraph, "cluster_current_elections")
    crossing = {(a, b) for a, b in e if (a in ab and b in ce) or (a in ce and b in ab)}
    assert crossing == {
        *cross,
        ("s_addressbase__same_uprns_as_raw", "s_current_elections__empty_joined"),
    }


def test_triggers_are_entry_points(agraph):
    schedule = agraph.get_node("trigger_current_elections_schedule")
    assert "cron(0 1 * * ? *)" in schedule.attr["label"]
    event = "trigger_current_elections_event_elections_set_changed"
    assert "elections_set_changed" in agraph.get_node(event).attr["label"]
    e = edges(agraph)
    assert ("trigger_current_elections_schedule", "queue_current_elections") in e
    assert (event, "queue_current_elections") in e
    assert ("queue_current_elections", "s_current_elections__empty_joined") in e
    assert "300 s delay" in agraph.get_node("queue_current_elections").attr["label"]


def test_buckets_hold_the_prefixes_tables_live_at(agraph):
    private = cluster_nodes(agraph, "cluster_s3_pollingstations_private_data")
    assert private == {
        "p_pollingstations_private_data_addressbase_2026_02_02_addressbase_cleaned",
        "p_pollingstations_private_data_addressbase_development_addressbase_partitioned",
        "p_pollingstations_private_data_addressbase_development_current_ballots_joined_to_address_base",
        "p_pollingstations_private_data_addressbase_development_current_elections_parquet",
    }
    ee = cluster_nodes(agraph, "cluster_s3_ee_data_cache_production")
    assert ee == {"p_ee_data_cache_production_ballots_with_wkt"}
    e = edges(agraph)
    assert (
        "t_current_elections__current_ballots",
        "p_ee_data_cache_production_ballots_with_wkt",
    ) in e
    # export_by_key destinations hang off the step.
    assert (
        "s_current_elections__export_outcodes",
        "p_pollingstations_private_data_addressbase_development_current_elections_parquet",
    ) in e


def test_tooltips_come_from_descriptions(agraph):
    node = agraph.get_node("s_current_elections__join_ballots_to_addresses")
    assert "Point-in-polygon join" in node.attr["tooltip"]
    table = agraph.get_node("t_current_elections__current_ballots_joined_to_address_base")
    assert "ballot_ids array<string> - Sorted distinct ballot ids" in table.attr["tooltip"]


def test_mermaid_has_the_same_graph(plan):
    text = to_mermaid(build_graph(plan))
    assert text.startswith("flowchart TB\n")
    assert '  subgraph cluster_addressbase["addressbase"]' in text
    assert (
        "t_addressbase__addressbase_partitioned --> s_current_elections__join_ballots_to_addresses"
        in text
    )
    assert "linkStyle" in text


def test_cli_check_passes_on_the_repo_and_fails_when_a_spec_changes(repo, copy):
    result = run("graph", "--check")
    assert result.exit_code == 0, result.stderr
    layer = copy / "layers" / "addressbase.yaml"
    layer.write_text(layer.read_text().replace("id: empty_partitioned", "id: purge_partitioned"))
    result = run("graph", "--check")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"{copy / 'docs' / 'databaker.dot'} is out of date; run `bakery graph` and commit it"
    ]


def test_cli_writes_dot_mermaid_and_svg(copy):
    committed = (copy / "docs" / "databaker.dot").read_text()
    result = run("graph", "--format", "dot")
    assert result.exit_code == 0
    assert result.stdout == committed
    result = run("graph", "-f", "mermaid", "--out", "graph.mmd")
    assert result.exit_code == 0 and (copy / "graph.mmd").read_text().startswith("flowchart")
    result = run("graph", "--out", "g.svg")
    assert result.exit_code == 0, result.stderr
    svg = (copy / "g.svg").read_text()
    assert "one query per first letter" in svg  # tooltips
    result = run("graph", "--out", "g.jpeg2")
    assert result.exit_code == 2
    assert result.stderr.startswith("bakery: error: cannot tell the format")


def test_cli_default_writes_png_and_dot_at_the_root(copy, plan):
    (copy / "docs" / "databaker.dot").unlink()
    result = run("graph")
    assert result.exit_code == 0, result.stderr
    png = (copy / "databaker.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width = int.from_bytes(png[16:20], "big")
    assert 800 <= width <= 1800, width  # legible at README width
    assert (copy / "docs" / "databaker.dot").read_text() == to_dot(build_graph(plan))


def test_cli_modules_do_not_import_pygraphviz():
    code = "import sys, bakery.cli; assert 'pygraphviz' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


FOR_EACH_LAYER = """\
name: fe
description: A for_each demo.
steps:
  - type: glue_table
    name: fe_out
    location: s3://{{ buckets.private_data }}/fe/{{ env }}/fe_out/
    format: parquet
    columns:
      - {name: uprn, type: string}
    partition_keys:
      - {name: first_letter, type: string}
  - type: purge_prefix
    id: empty_out
    table: fe_out
  - type: for_each
    id: per_letter
    over: {values: [A, B]}
    as: letter
    max_concurrency: 2
    steps:
      - type: athena_query
        id: one_letter
        sql: >-
          SELECT uprn, first_letter FROM {{ ref('addressbase.addressbase_partitioned') }}
          WHERE first_letter = {{ param('letter') }}
        into: fe_out
      - type: check
        id: no_null_uprn
        check: {kind: no_rows, sql: "SELECT uprn FROM {{ ref('fe_out') }} WHERE uprn IS NULL"}
"""


def test_for_each_body_is_a_cluster_inside_its_layer(copy):
    from bakery.plan import build_plan
    from bakery.workspace import load_workspace

    (copy / "layers" / "fe.yaml").write_text(FOR_EACH_LAYER)
    dot = to_dot(build_graph(build_plan(load_workspace(copy), "development")))
    agraph = pygraphviz.AGraph(string=dot)
    inner = cluster_nodes(agraph, "cluster_fe__per_letter")
    assert inner == {
        "s_fe__per_letter",
        "s_fe__per_letter__one_letter",
        "s_fe__per_letter__no_null_uprn",
    }
    e = edges(agraph)
    assert ("s_fe__per_letter", "s_fe__per_letter__one_letter") in e
    assert ("s_fe__per_letter__one_letter", "s_fe__per_letter__no_null_uprn") in e
    assert ("s_fe__per_letter__no_null_uprn", "s_fe__refresh_fe_out") in e
    assert ("t_addressbase__addressbase_partitioned", "s_fe__per_letter__one_letter") in e
    assert "x2 over letter A, B, 2 at once" in agraph.get_node("s_fe__per_letter").attr["label"]
