"""The compiled state machines, run, on the cases that only a run shows (issue 12): a NULL
cell and quotes in rows mapped over, more rows than one GetQueryResults page, a failing
check's message, throttling, and an UNLOAD retried after it wrote some files.

The layers are fixtures of their own (tests/fixtures/simulate/), next to the project's
real layers, so that no test depends on what a real layer holds.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from aws_helpers import REPO

from bakery.engine import BakeError, bake
from bakery.plan import Plan, build_plan
from bakery.sample_data import write_sample_data
from bakery.simulate.run import Fault, simulate
from bakery.store import LocalStore
from bakery.workspace import load_workspace

FIXTURES = REPO / "tests" / "fixtures" / "simulate"
ITEMS = (
    b"item,code\n"
    b"plain,a\n"
    b'"O\'Neil",b\n'
    b'"comma, inside",c\n'
    b",d\n"  # item is NULL in the rows mapped over
    b"e,\n"  # code is NULL
    b'"quote "" double",f\n'
)


@pytest.fixture(scope="module")
def sim_plan(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    root = tmp_path_factory.mktemp("proj")
    shutil.copy(REPO / "bakery.yaml", root / "bakery.yaml")
    shutil.copytree(REPO / "layers", root / "layers")
    for layer in FIXTURES.glob("*.yaml"):
        shutil.copy(layer, root / "layers" / layer.name)
    return build_plan(load_workspace(root), "development")


def _store(root: Path, plan: Plan, items: bytes = ITEMS, many: int = 0) -> LocalStore:
    store = LocalStore(root)
    store.write_bytes(plan.table("sim_rows.sim_items").location + "items.csv", items)
    lines = "".join(f"item {n}\n" for n in range(many))
    store.write_bytes(
        plan.table("sim_many.sim_many_items").location + "items.csv", f"item\n{lines}".encode()
    )
    return store


def _rows(store: LocalStore, location: str) -> list[tuple]:
    out: list[tuple] = []
    for uri in store.list(location):
        out += [
            tuple(r.values()) for r in pq.read_table(io.BytesIO(store.read_bytes(uri))).to_pylist()
        ]
    return sorted(out, key=repr)


def _run(plan: Plan, layer: str, root: Path, **kwargs):
    return simulate(plan, [layer], root, project_root=REPO, **kwargs)


def test_rows_with_null_cells_and_quotes_reach_athena_as_bake_passes_them(sim_plan, tmp_path):
    baked = _store(tmp_path / "bake", sim_plan)
    bake(sim_plan, ["sim_rows"], baked)
    simulated = _store(tmp_path / "sim", sim_plan)
    result = _run(sim_plan, "sim_rows", tmp_path / "sim")
    assert result.ok, result.layers[-1]
    copied = sim_plan.table("sim_rows.sim_copied").location
    want = _rows(baked, copied)
    assert len(want) == 6 and (None, "d") in want and ("e", None) in want
    assert ("O'Neil", "b") in want and ('quote " double', "f") in want
    assert _rows(simulated, copied) == want


def test_a_fan_out_over_1500_rows_runs_every_row(sim_plan, tmp_path):
    """GetQueryResults pages hold 1000 rows and the state 256 KiB: the rows are read by
    the Map from the query's result file instead."""
    _store(tmp_path, sim_plan, many=1500)
    result = _run(sim_plan, "sim_many", tmp_path)
    run = result.layers[-1]
    assert (run.status, run.error) == ("SUCCEEDED", None), run.cause
    iterations = [e for e in run.events if e["type"] == "MapIterationStarted"]
    assert len(iterations) == 1500
    assert run.entered().count("item_is_not_bad") == 1500


def test_a_failing_check_fails_with_the_message_bake_gives(sim_plan, tmp_path):
    duplicated = ITEMS + b"plain,a\n"  # copied twice by each of its two iterations
    baked = _store(tmp_path / "bake", sim_plan, items=duplicated)
    with pytest.raises(BakeError) as failure:
        bake(sim_plan, ["sim_rows"], baked)
    _store(tmp_path / "sim", sim_plan, items=duplicated)
    run = _run(sim_plan, "sim_rows", tmp_path / "sim").layers[-1]
    assert run.status == "FAILED"
    assert run.error == "sim_rows.every_row_copied failed"
    assert run.entered()[-1] == "every_row_copied did not hold"
    assert run.cause == str(failure.value)
    assert run.cause == (
        "check sim_rows.every_row_copied failed: Every input row was copied once.: "
        "inputs=7, copies=9"
    )


@pytest.mark.parametrize(
    ("state", "error"),
    [
        # A SELECT throttled by a request-rate limit Athena does not model.
        ("per_item rows query", "Athena.AmazonAthenaException"),
        # An INSERT refused at submission (query quota): nothing ran, safe to send again.
        ("copy_item", "Athena.TooManyRequestsException"),
        ("empty_copied", "Lambda.TooManyRequestsException"),
    ],
)
def test_throttling_is_retried(sim_plan, tmp_path, state, error):
    _store(tmp_path, sim_plan)
    fault = Fault(
        state, error, times=2, cause="Rate exceeded (Service: Athena; ThrottlingException)"
    )
    run = _run(sim_plan, "sim_rows", tmp_path, faults=[fault]).layers[-1]
    assert (run.status, run.error) == ("SUCCEEDED", None), run.cause
    assert run.retried().count(state) == 2


def test_a_query_refused_at_the_quota_is_retried_past_the_other_errors_budget(sim_plan, tmp_path):
    # Athena's active-query quota is shared by every environment and system in the account:
    # a refused query keeps being retried (40 attempts, waits cut to 0 ms here), where other
    # errors give up after 6. The row query runs once, so all 20 refusals are its own.
    _store(tmp_path, sim_plan)
    fault = Fault("per_item rows query", "Athena.TooManyRequestsException", times=20)
    run = _run(sim_plan, "sim_rows", tmp_path, faults=[fault]).layers[-1]
    assert (run.status, run.error) == ("SUCCEEDED", None), run.cause
    assert run.retried().count("per_item rows query") == 20


def test_a_failed_query_is_not_retried(sim_plan, tmp_path):
    _store(tmp_path, sim_plan)
    fault = Fault("per_item rows query", "States.TaskFailed", times=5)
    run = _run(sim_plan, "sim_rows", tmp_path, faults=[fault]).layers[-1]
    assert (run.status, run.error) == ("FAILED", "sim_rows.per_item failed")
    assert run.retried() == []


def test_an_unload_retried_after_writing_files_starts_from_an_empty_destination(sim_plan, tmp_path):
    """The first attempt writes its files, then its answer is lost (an internal error):
    the retry empties the destination before UNLOADing again, as UNLOAD needs."""
    store = LocalStore(tmp_path)
    write_sample_data(sim_plan, store, addresses=300, ballots=10, seed=5)
    fault = Fault("partition_addressbase unload", "Athena.InternalServerException", after=True)
    run = _run(sim_plan, "addressbase", tmp_path, faults=[fault]).layers[-1]
    assert (run.status, run.error) == ("SUCCEEDED", None), run.cause
    assert run.retried() == ["partition_addressbase"]
    assert run.entered().count("partition_addressbase empty destination") == 2
    table = sim_plan.table("addressbase.addressbase_partitioned")
    uprns = [r[1] for r in _rows(store, table.location)]
    assert len(uprns) == 300 == len(set(uprns))  # written once, not twice
