"""One rule for a damaged published table (bakery/engine/damaged.py): a step that reads
it fails naming the file (tests/local/test_nothing_lost.py), and so does a publish guard
that compares with it, as Athena's query would: compared with what could be read, it
would pass on less than readers have. With the damaged file deleted, the bake compares
with the rest, publishes and repairs the table."""

from __future__ import annotations

import pytest

from bakery import sample_data
from bakery.engine import BakeError, bake
from bakery.plan import build_plan
from bakery.workspace import load_workspace
from tests.local.conftest import JOINED, read_joined, snapshot
from tests.local.test_publish_guard import guarded_project


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    return build_plan(
        load_workspace(guarded_project(tmp_path_factory.mktemp("p") / "p")), "development"
    )


def test_a_publish_guard_refuses_a_damaged_published_table_and_names_the_file(plan, store):
    sample_data.write_sample_data(plan, store, addresses=500, ballots=30, seed=3)
    bake(plan, ["current_elections"], store, with_upstream=True)
    joined = plan.table(JOINED)
    bad = store.list(joined.location)[0]
    path = store.path(bad)
    path.write_bytes(path.read_bytes()[:50])  # truncated: no Parquet footer
    before = snapshot(store.root)

    with pytest.raises(BakeError) as err:
        bake(plan, ["current_elections"], store)
    message = str(err.value)
    assert message.startswith(
        f"check current_elections.ballots_not_lost failed: the published {JOINED} cannot be "
        f"read: file {bad} is damaged ("
    ), message
    assert message.endswith(
        "replace it with a good copy or delete it, then run again; nothing was published"
    )
    assert snapshot(store.root) == before

    path.unlink()  # the fix the message names
    result = bake(plan, ["current_elections"], store)
    guard = next(s for s in result.steps if s.id == "ballots_not_lost")
    assert guard.ok and guard.note == "passed"
    assert len(read_joined(store, plan)) == 500  # every file reads again
