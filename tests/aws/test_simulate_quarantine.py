"""A query's quarantine through the compiled state machine (`bakery simulate`): the same
rows rejected, the same rows published and, above the limit, the same failure as `bake`
(issue 19, item 5: identically on both back-ends).

The real addressbase layer (no publish_guard, so it simulates on its own) with hostile
rows, and a fixture layer with a percentage limit (tests/fixtures/quarantine/)."""

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
from bakery.simulate.run import simulate
from bakery.store import LocalStore
from bakery.workspace import load_workspace
from tests.local.test_quarantine import HOSTILE, REJECTED, _csv

FIXTURES = REPO / "tests" / "fixtures" / "quarantine"
RAW = "addressbase.addressbase_cleaned_raw"


@pytest.fixture(scope="module")
def q_plan(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    root = tmp_path_factory.mktemp("proj")
    shutil.copy(REPO / "bakery.yaml", root / "bakery.yaml")
    shutil.copytree(REPO / "layers", root / "layers")
    for layer in FIXTURES.glob("*.yaml"):
        shutil.copy(layer, root / "layers" / layer.name)
    return build_plan(load_workspace(root), "development")


def _rows(store: LocalStore, location: str) -> list[tuple]:
    out: list[tuple] = []
    for uri in store.list(location):
        table = pq.read_table(io.BytesIO(store.read_bytes(uri)))
        out += [tuple(r.values()) for r in table.to_pylist()]
    return sorted(out, key=repr)


def _addressbase(root: Path, plan: Plan) -> LocalStore:
    store = LocalStore(root)
    write_sample_data(plan, store, addresses=200, ballots=10, seed=5, only=[RAW])
    rows = [(u, f"{u} Hostile Road", pc, loc, "R") for u, pc, loc, _ in HOSTILE]
    store.write_bytes(plan.table(RAW).location + "hostile.csv", _csv(rows))
    return store


def test_addressbase_rejects_the_same_rows_as_bake(q_plan, tmp_path):
    baked = _addressbase(tmp_path / "bake", q_plan)
    result = bake(q_plan, ["addressbase"], baked)
    simulated = _addressbase(tmp_path / "sim", q_plan)
    run = simulate(q_plan, ["addressbase"], tmp_path / "sim", project_root=REPO).layers[-1]
    assert (run.status, run.error) == ("SUCCEEDED", None), run.cause
    # both statements and the check ran, in this order
    entered = run.entered()
    order = ["partition_addressbase unload", "partition_addressbase unload rejects"]
    order.append("partition_addressbase_quarantine passed?")
    assert [s for s in entered if s in order] == order
    for ref in ("addressbase.addressbase_rejects", "addressbase.addressbase_partitioned"):
        location = q_plan.table(ref).location
        assert _rows(simulated, location) == _rows(baked, location), ref
    rejects = _rows(simulated, q_plan.table("addressbase.addressbase_rejects").location)
    assert (
        len(rejects)
        == len(REJECTED)
        == result.rejected["addressbase.partition_addressbase"]["rows"]
    )
    assert sorted((r[0], r[1]) for r in rejects) == sorted((h[0], h[3]) for h in REJECTED)


def _readings(root: Path, plan: Plan, bad: int) -> LocalStore:
    store = LocalStore(root)
    lines = [f"r{n:02d},{n}" for n in range(20 - bad)] + [f"x{n},n/a" for n in range(bad)]
    text = "id,reading\n" + "\n".join(lines) + "\n"
    store.write_bytes(plan.table("sim_quarantine.sim_readings").location + "r.csv", text.encode())
    return store


def test_above_the_percentage_both_fail_with_the_same_message(q_plan, tmp_path):
    baked = _readings(tmp_path / "bake", q_plan, bad=3)  # 15 % > 10 %
    with pytest.raises(BakeError) as failure:
        bake(q_plan, ["sim_quarantine"], baked)
    _readings(tmp_path / "sim", q_plan, bad=3)
    run = simulate(q_plan, ["sim_quarantine"], tmp_path / "sim", project_root=REPO).layers[-1]
    assert run.status == "FAILED"
    assert run.error == "sim_quarantine.parse_readings_quarantine failed"
    assert (
        run.cause
        == str(failure.value)
        == (
            "check sim_quarantine.parse_readings_quarantine failed: quarantine: 3 of 20 rows "
            "rejected (15.00 %), over the limit of 10 % of the rows; the first by id: "
            "id=x0 (not a number); id=x1 (not a number); id=x2 (not a number); "
            "nothing was published"
        )
    )
    for store in (baked, LocalStore(tmp_path / "sim")):  # nothing published
        assert store.list(q_plan.table("sim_quarantine.sim_numbers").location) == []
        assert store.list(q_plan.table("sim_quarantine.sim_rejects").location) == []
