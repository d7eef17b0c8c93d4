"""`bakery simulate`: the compiled state machines run end to end on this machine, with the
same published files as `bakery bake` on the same inputs.

Layer-generic: every layer of the repository's plan is simulated (with its upstream
layers) and compared with a bake, table by table and export by export.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from aws_helpers import REPO

from bakery.engine import bake
from bakery.plan import Plan
from bakery.sample_data import write_sample_data
from bakery.simulate.run import simulate
from bakery.store import LocalStore

ADDRESSES, BALLOTS = 400, 24  # small: every layer runs in seconds


def _seed(root: Path, plan: Plan) -> LocalStore:
    store = LocalStore(root)
    write_sample_data(plan, store, addresses=ADDRESSES, ballots=BALLOTS, seed=7)
    return store


def _rows(store: LocalStore, files: list[str]) -> list[tuple]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = [pq.read_table(io.BytesIO(store.read_bytes(f))) for f in files]
    tables = [t for t in tables if t.num_columns]
    if not tables:
        return []
    table = pa.concat_tables(tables, promote_options="default")
    rows = [
        tuple(json.dumps(v, sort_keys=True, default=str) for v in r.values())
        for r in table.to_pylist()
    ]
    return sorted(rows)


def _published(plan: Plan, store: LocalStore) -> dict[str, object]:
    """What readers see: per table a layer writes, its partition folders and rows; per
    export, every file name and its rows (in file order)."""
    out: dict[str, object] = {}
    for layer in plan.layers:
        for table in layer.tables:
            if table.external or table.format != "parquet":
                continue
            files = store.list(table.location)
            rel = [f[len(table.location) :] for f in files]
            folders = sorted({r.rsplit("/", 1)[0] for r in rel if "/" in r})
            out[f"table {table.ref}"] = (folders, _rows(store, files))
        for step in layer.walk():
            if step.kind == "export_by_key":
                files = store.list(step.location)
                out[f"export {step.qualified_id}"] = {
                    f[len(step.location) :]: _rows(store, [f]) for f in files
                }
    return out


@pytest.fixture(scope="module")
def baked_and_simulated(plan: Plan, tmp_path_factory: pytest.TempPathFactory):
    last = plan.layers[-1].name
    baked = _seed(tmp_path_factory.mktemp("bake"), plan)
    bake(plan, [last], baked, with_upstream=True)
    root = tmp_path_factory.mktemp("simulate")
    simulated = _seed(root, plan)
    result = simulate(plan, [last], root, with_upstream=True, project_root=REPO)
    return baked, simulated, result


def test_every_layer_simulates_to_the_end(plan, baked_and_simulated):
    _, _, result = baked_and_simulated
    assert [(r.layer, r.status, r.error) for r in result.layers] == [
        (ly.name, "SUCCEEDED", None) for ly in plan.layers
    ]
    for run in result.layers:
        assert run.entered()[-1] == "succeeded"


def test_simulate_publishes_what_bake_publishes(plan, baked_and_simulated):
    baked, simulated, _ = baked_and_simulated
    expected = _published(plan, baked)
    got = _published(plan, simulated)
    assert sorted(got) == sorted(expected)
    for key in expected:
        assert got[key] == expected[key], key
    # Something was published: the comparison is not of two empty stores.
    assert any(isinstance(v, dict) and v for v in expected.values())
    # Staging is cleared by publish.
    for table in plan.tables.values():
        if not table.external:
            from bakery.compile.staging import staging_location

            assert simulated.list(staging_location(table)) == []


def test_cli_simulate_json_line(plan, tmp_path):
    root = tmp_path / "store"
    _seed(root, plan)  # small inputs: --sample then seeds nothing
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bakery",
            "simulate",
            "addressbase",
            "--sample",
            "--store",
            str(root),
            "--json",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert line["ok"] is True and line["exit_code"] == 0
    assert [r["status"] for r in line["layers"]] == ["SUCCEEDED"]


def test_cli_simulate_unknown_layer_is_a_usage_error():
    proc = subprocess.run(
        [sys.executable, "-m", "bakery", "simulate", "nope", "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["exit_code"] == 2
    assert "unknown layer 'nope'" in proc.stderr
