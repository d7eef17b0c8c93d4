"""One publish plan, obeyed by both back-ends (issue 20, item 1): a failure injected into
each step of a layer that writes — a query, a check, a Lambda, the export (half-way) —
leaves every published table and exported file byte-identical, on `bake` and on the
compiled state machine run by `simulate`, and the message names the step the same way.

On `simulate` the store is only written once a state machine succeeded, so what the
compiled definition did to the live objects is read in moto's S3 (the simulation's AWS)
as the run ends: there, a definition that published the tables before its exports
(bakery before the publish plan) leaves new tables beside half-new export files.

The layer is the repository's current_elections (a geo_join query, checks, the ballots
Lambda, an export per outcode), on a small sample; the second run's ballots have other
ids than the published ones (same boundaries, so no guard stops the run), so the
layer's joined table and every non-empty outcode file would change.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aws_helpers import REPO

from bakery.engine import BakeError, bake
from bakery.engine import steps as engine_steps
from bakery.lambdas import export_by_key as export_core
from bakery.lambdas.s3uri import is_hidden, split
from bakery.plan import Plan, build_plan
from bakery.sample_data import write_sample_data
from bakery.simulate import run as sim_run
from bakery.simulate.run import Fault, simulate
from bakery.store import LocalStore
from bakery.workspace import load_workspace

LAYER = "current_elections"
ADDRESSES, BALLOTS = 300, 12
BALLOTS_TABLE = "current_elections.current_ballots"


@pytest.fixture(scope="module")
def real_plan() -> Plan:
    return build_plan(load_workspace(REPO), "development")


def _locations(plan: Plan) -> list[str]:
    """Every published location the layer writes: its tables and its export's destination."""
    layer = plan.layer(LAYER)
    out = [t.location for t in layer.tables]
    return out + [s.location or "" for s in layer.walk() if s.kind == "export_by_key"]


def _published(store: LocalStore, plan: Plan) -> dict[str, bytes]:
    return {uri: store.read_bytes(uri) for loc in _locations(plan) for uri in store.list(loc)}


@pytest.fixture(scope="module")
def published(real_plan: Plan, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store where the layer was published from the sample's ballots, and the ballots
    the Lambda finds next time (no database: it reuses the store's) are renamed."""
    root = tmp_path_factory.mktemp("published")
    store = LocalStore(root)
    write_sample_data(real_plan, store, addresses=ADDRESSES, ballots=BALLOTS, seed=3)
    bake(real_plan, [LAYER], store, with_upstream=True)
    for uri in store.list(real_plan.table(BALLOTS_TABLE).location):
        header, *rows = store.read_bytes(uri).decode().splitlines(keepends=True)
        renamed = [f"renamed.{row}" if row.strip() else row for row in rows]
        store.write_bytes(uri, "".join([header, *renamed]).encode())
    return root


def _store(published: Path, root: Path) -> LocalStore:
    shutil.copytree(published, root)
    return LocalStore(root)


# The step each case fails, and the failure: on bake, a wrapper around the step's runner
# (after it did its work, for the query and the Lambda); on simulate, a Fault on its state.
CASES = {
    "query": ("join_ballots_to_addresses", "join_ballots_to_addresses unload value", True),
    "check": ("ballots_not_empty", "ballots_not_empty", False),
    "lambda": ("export_ballots", "export_ballots", True),
    "export half-way": ("export_outcodes", "export_outcodes export partition", True),
}


def _inject_bake(mp: pytest.MonkeyPatch, case: str) -> None:
    step_id = CASES[case][0]
    if case == "export half-way":  # the first partition's files written, then a failure
        real_export = export_core.export_partition
        calls = {"n": 0}

        def export_partition(*args: Any, **kwargs: Any) -> list[str]:
            calls["n"] += 1
            if calls["n"] > 1:
                raise RuntimeError("injected")
            return real_export(*args, **kwargs)

        mp.setattr(export_core, "export_partition", export_partition)
        return
    kind = {"query": "geo_join", "check": "check", "lambda": "lambda"}[case]
    real: Callable = engine_steps.RUNNERS[kind]

    def failing(ctx: Any, step: Any, con: Any, params: list[Any]) -> Any:
        if step.id != step_id:
            return real(ctx, step, con, params)
        if CASES[case][2]:
            real(ctx, step, con, params)
        raise RuntimeError("injected")

    mp.setitem(engine_steps.RUNNERS, kind, failing)


def _moto_live(s3: Any, locations: list[str]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for location in locations:
        bucket, prefix = split(location)
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for obj in (o for page in pages for o in page.get("Contents", [])):
            if not is_hidden(obj["Key"][len(prefix) :]):
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                out[f"s3://{bucket}/{obj['Key']}"] = body
    return out


@pytest.fixture
def moto_at_end(real_plan: Plan, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, bytes]]:
    """What the simulation's S3 holds at the layer's published locations as it ends."""
    seen: dict[str, dict[str, bytes]] = {}
    real_close = sim_run._Session.close

    def close(session: Any) -> None:
        seen["live"] = _moto_live(session.s3, _locations(real_plan))
        real_close(session)

    monkeypatch.setattr(sim_run._Session, "close", close)
    return seen


@pytest.mark.parametrize("case", list(CASES))
def test_a_failing_step_leaves_the_published_bytes_on_bake(
    real_plan, published, tmp_path, monkeypatch, case
):
    store = _store(published, tmp_path / "store")
    before = _published(store, real_plan)
    assert any("current_elections_parquet" in uri for uri in before)  # export files exist
    with monkeypatch.context() as mp:
        _inject_bake(mp, case)
        with pytest.raises(BakeError) as failure:
            bake(real_plan, [LAYER], store)
    step = f"{LAYER}.{CASES[case][0]}"
    assert str(failure.value).startswith(f"step {step} failed: ")
    assert "injected" in str(failure.value)
    assert _published(store, real_plan) == before
    # the next run rolls forward: it succeeds, and the layer's product changes
    assert bake(real_plan, [LAYER], store).ok
    assert _published(store, real_plan) != before


@pytest.mark.parametrize("case", list(CASES))
def test_a_failing_state_leaves_the_live_objects_on_simulate(
    real_plan, published, tmp_path, moto_at_end, case
):
    store = _store(published, tmp_path / "store")
    before = _published(store, real_plan)
    step_id, state, after = CASES[case]
    fault = Fault(state, "States.TaskFailed", after=after, cause="injected")
    result = simulate(real_plan, [LAYER], tmp_path / "store", project_root=REPO, faults=[fault])
    (run,) = result.layers
    assert (run.status, run.error) == ("FAILED", f"{LAYER}.{step_id} failed"), run.cause
    # What the state machine left live (in its S3) and what the store holds: the old bytes.
    assert moto_at_end["live"] == before
    assert _published(store, real_plan) == before


def test_after_a_failure_the_next_simulate_publishes(real_plan, published, tmp_path):
    """The runs above leave the store byte-identical: the next run starts from it."""
    store = _store(published, tmp_path / "store")
    before = _published(store, real_plan)
    result = simulate(real_plan, [LAYER], tmp_path / "store", project_root=REPO)
    assert result.ok, result.layers[-1].cause
    assert _published(store, real_plan) != before
