"""Row values of a for_each over a query reach its children unchanged on the interpreter,
whatever they hold: Step Functions' CSV ItemReader takes a backslash as an escape, so the
row query encodes its columns in base64 (bakery/compile/athena_sql.py rows_query), and
the simulator reads the result file by Step Functions' rules (bakery/simulate/item_csv.py).
"""

from __future__ import annotations

import io
import shutil
from dataclasses import replace

import pyarrow.parquet as pq
import pytest
import sim_hooks
from aws_helpers import REPO

from bakery.compile.maps import MAX_ROW_VALUE_BYTES
from bakery.plan import Plan, build_plan
from bakery.simulate import item_csv
from bakery.simulate.run import simulate
from bakery.store import LocalStore
from bakery.workspace import load_workspace

FIXTURES = REPO / "tests" / "fixtures" / "simulate"
# The input of tests/fixtures/simulate/sim_escapes.yaml (the values as Athena holds them).
VALUES = [
    'a\\"b',
    "c\\\\d",
    "line\\nbreak",
    "\\u00e9",
    "é",
    "comma, inside",
    "O'Neil",
    'say "hi"',
    "plain",
    None,
]


@pytest.fixture(scope="module")
def sim_plan(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    root = tmp_path_factory.mktemp("proj")
    shutil.copy(REPO / "bakery.yaml", root / "bakery.yaml")
    shutil.copytree(REPO / "layers", root / "layers")
    for layer in FIXTURES.glob("*.yaml"):
        shutil.copy(layer, root / "layers" / layer.name)
    plan = build_plan(load_workspace(root), "development")
    # A lambda child's payload carries the row's raw values it declares as params (the
    # compiler's lambda_state); the spec gives a lambda no params yet, so the test does.
    layer = plan.layer("sim_escapes")
    (loop,) = [s for s in layer.steps if s.id == "per_value"]
    children = [replace(c, params=["item"]) if c.id == "tell" else c for c in loop.children]
    steps = [replace(s, children=children) if s is loop else s for s in layer.steps]
    layers = [replace(ly, steps=steps) if ly is layer else ly for ly in plan.layers]
    return replace(plan, layers=layers)


def _seed(plan: Plan, root, values: list) -> LocalStore:
    import pyarrow as pa

    store = LocalStore(root)
    out = io.BytesIO()
    pq.write_table(pa.table({"item": pa.array(values, pa.string())}), out)
    store.write_bytes(
        plan.table("sim_escapes.sim_values").location + "values.parquet", out.getvalue()
    )
    return store


def _rows(store: LocalStore, location: str) -> list:
    out = []
    for uri in store.list(location):
        out += [r["item"] for r in pq.read_table(io.BytesIO(store.read_bytes(uri))).to_pylist()]
    return out


def test_row_values_reach_athena_and_lambda_children_unchanged(sim_plan, tmp_path, monkeypatch):
    monkeypatch.setattr(sim_hooks, "EVENTS", [])
    store = _seed(sim_plan, tmp_path, VALUES)
    result = simulate(sim_plan, ["sim_escapes"], tmp_path, project_root=REPO)
    run = result.layers[-1]
    assert (run.status, run.error) == ("SUCCEEDED", None), run.cause
    # The raw value, decoded by the Map's ItemSelector, in each Lambda child's payload.
    got = [e["item"] for e in sim_hooks.EVENTS]
    assert sorted(got, key=repr) == sorted(VALUES, key=repr)
    # The SQL literal, decoded, as each Athena child's execution parameter: the value the
    # child wrote, published.
    copied = _rows(store, sim_plan.table("sim_escapes.sim_escaped").location)
    assert sorted(copied, key=repr) == sorted(VALUES, key=repr)


def test_the_item_reader_drops_a_backslash_as_step_functions_does():
    """The rules of https://docs.aws.amazon.com/step-functions/latest/dg/example-csv-parse-dist-map.html,
    the documentation's own example first."""
    assert item_csv.items("path,size\nC:\\\\Program Files\\\\MyApp.exe,6534512\n") == [
        {"path": "C:\\Program Files\\MyApp.exe", "size": "6534512"}
    ]
    text = 'v,w\n"a\\nb","x ""y"" z"\n"c\\\\d\\,e",\n'
    assert item_csv.items(text) == [
        {"v": "anb", "w": 'x "y" z'},  # a backslash before any other character is dropped
        {"v": "c\\d,e", "w": ""},
    ]
    assert item_csv.items("a,b\n1\n2,3,4\n") == [{"a": "1", "b": ""}, {"a": "2", "b": "3"}]
    assert item_csv.items("a|b\n1|2\n", "|") == [{"a": "1", "b": "2"}]


def test_a_row_value_too_long_to_decode_fails_the_execution(sim_plan, tmp_path):
    """States.Base64Decode takes 10,000 characters: a longer value fails the run (loudly,
    States.Runtime), it never reaches a child cut or changed."""
    _seed(sim_plan, tmp_path, ["x" * MAX_ROW_VALUE_BYTES, "y" * (MAX_ROW_VALUE_BYTES + 10)])
    run = simulate(sim_plan, ["sim_escapes"], tmp_path, project_root=REPO).layers[-1]
    assert run.status == "FAILED"
    assert "10,000 characters" in (run.cause or ""), run.cause
