"""One rule for a damaged published table (bakery/engine/damaged.py): a step that reads
it fails naming the file (tests/local/test_nothing_lost.py), a publish guard reads it
as empty with a note, so the bake that rewrites it publishes and repairs it."""

from __future__ import annotations

import pytest

from bakery import sample_data
from bakery.engine import bake
from bakery.plan import build_plan
from bakery.workspace import load_workspace
from tests.local.conftest import JOINED, read_joined
from tests.local.test_publish_guard import guarded_project


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    return build_plan(
        load_workspace(guarded_project(tmp_path_factory.mktemp("p") / "p")), "development"
    )


def test_a_publish_guard_reads_a_damaged_published_table_as_empty_and_the_bake_repairs_it(
    plan, store
):
    sample_data.write_sample_data(plan, store, addresses=500, ballots=30, seed=3)
    bake(plan, ["current_elections"], store, with_upstream=True)
    joined = plan.table(JOINED)
    bad = store.list(joined.location)[0]
    path = store.path(bad)
    path.write_bytes(path.read_bytes()[:50])  # truncated: no Parquet footer

    result = bake(plan, ["current_elections"], store)
    guard = next(s for s in result.steps if s.id == "ballots_not_lost")
    assert guard.ok
    assert guard.note == (
        f"passed; published {JOINED} is damaged ({bad}): compared as empty; this bake rewrites it"
    ), guard.note
    assert len(read_joined(store, plan)) == 500  # every file reads again
