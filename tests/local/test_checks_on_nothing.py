"""A check never passes because there was nothing to check (issue 18, items 6 and 7),
baked locally; tests/aws/test_checks_on_nothing_aws.py runs the same cases through the
compiled state machines.

- A step that reads another layer's table that was never published stops the bake,
  naming the layer to bake first, unless the step lists the table in its
  optional_upstream (then it reads it as empty).
- same_set of two empty sides fails unless the check says `allow_empty: true`.
- The publish guard compares with whatever the live location holds, also when bakery
  never published it (another system wrote the files there), and refuses files it
  cannot read as the table.

The reading layer is tests/fixtures/upstream/outcode_addresses.yaml, added to a copy of
the framework tests' project (tests/fixtures/project).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from bakery import sample_data
from bakery.engine import BakeError, bake
from bakery.plan import Plan, build_plan
from bakery.store import LocalStore
from bakery.workspace import load_workspace
from tests.local.conftest import JOINED, PROJECT, REPO, snapshot
from tests.local.test_publish_guard import guarded_project, truncated

READER = REPO / "tests" / "fixtures" / "upstream" / "outcode_addresses.yaml"
OPTIONAL = "    optional_upstream: [addressbase.addressbase_partitioned]\n"
NEVER_PUBLISHED = (
    "step outcode_addresses.copy_addresses reads addressbase.addressbase_partitioned, which "
    "has never been published: it reads no rows at "
    "s3://pollingstations.private.data/addressbase/development/addressbase_partitioned/. "
    "Bake layer addressbase first (`bakery bake outcode_addresses --with-upstream`; on AWS "
    "`bakery run addressbase`), or, if copy_addresses may run without it, list "
    "addressbase.addressbase_partitioned in its optional_upstream"
)
BOTH_EMPTY = (
    "check outcode_addresses.same_uprns failed: outcode_addresses.uprn holds the same "
    "non-empty set of values as addressbase.addressbase_partitioned.uprn: left_count=0, "
    "right_count=0, left_distinct=0, right_distinct=0"
)


def reader_text(*, optional: tuple[str, ...] = (), allow_empty: bool = False) -> str:
    """The reading layer, its steps in `optional` listing addressbase's table as optional."""
    text = READER.read_text()
    for step in optional:
        text = text.replace(f"    id: {step}\n", f"    id: {step}\n{OPTIONAL}")
    if allow_empty:
        text = text.replace("      column: uprn\n", "      column: uprn\n      allow_empty: true\n")
    return text


def reader_plan(root: Path, **edits) -> Plan:
    shutil.copytree(PROJECT, root)
    (root / "layers" / "outcode_addresses.yaml").write_text(reader_text(**edits))
    return build_plan(load_workspace(root), "development")


def published_rows(store: LocalStore, plan: Plan, ref: str) -> int:
    files = [store.path(f) for f in store.list(plan.table(ref).location)]
    return sum(pq.read_metadata(f).num_rows for f in files)


# ---------------------------------------------------------------- upstream never published


def test_a_never_published_upstream_table_stops_its_first_reader(tmp_path, store):
    plan = reader_plan(tmp_path / "p")
    with pytest.raises(BakeError) as err:
        bake(plan, ["outcode_addresses"], store)
    assert str(err.value) == NEVER_PUBLISHED
    failed = err.value.result.steps[-1]
    assert (failed.id, failed.ok) == ("copy_addresses", False)
    assert store.list("s3://pollingstations.private.data/") == []  # nothing written


def test_with_its_upstream_the_reader_bakes_every_address(tmp_path, store):
    plan = reader_plan(tmp_path / "p")
    sample_data.write_sample_data(plan, store, addresses=300, ballots=10, seed=4)
    assert bake(plan, ["outcode_addresses"], store, with_upstream=True).ok
    assert published_rows(store, plan, "outcode_addresses.outcode_addresses") == 300
    # the upstream is published now: the reader bakes on its own
    assert bake(plan, ["outcode_addresses"], store).ok


def test_an_optional_upstream_table_is_read_as_empty(tmp_path, store):
    plan = reader_plan(tmp_path / "p", optional=("copy_addresses", "same_uprns"), allow_empty=True)
    result = bake(plan, ["outcode_addresses"], store)
    assert result.ok
    assert result.tables["outcode_addresses.outcode_addresses"]["rows"] == 0


def test_optional_for_one_step_only_moves_the_probe_to_the_next_reader(tmp_path, store):
    plan = reader_plan(tmp_path / "p", optional=("copy_addresses",))
    with pytest.raises(BakeError) as err:
        bake(plan, ["outcode_addresses"], store)
    assert str(err.value) == NEVER_PUBLISHED.replace("copy_addresses", "same_uprns")
    assert [s.id for s in err.value.result.steps if s.ok] == [
        "empty_outcode_addresses",
        "copy_addresses",
    ]


# ---------------------------------------------------------------- same_set of nothing


def test_same_set_of_two_empty_sides_fails(tmp_path, store):
    plan = reader_plan(tmp_path / "p", optional=("copy_addresses", "same_uprns"))
    before = snapshot(store.root)
    with pytest.raises(BakeError) as err:
        bake(plan, ["outcode_addresses"], store)
    assert str(err.value) == BOTH_EMPTY
    assert snapshot(store.root) == before  # nothing published


def test_the_query_athena_runs_fails_the_same_way(tmp_path, store):
    """same_set's template (what Athena runs) returns the row the engine reports."""
    from bakery.engine import checks, duck
    from bakery.engine.context import Context
    from bakery.engine.publish import Staging
    from bakery.engine.transpile import to_duckdb

    for allow_empty, want in ((False, (0, 0, 0, 0)), (True, None)):
        plan = reader_plan(
            tmp_path / str(allow_empty),
            optional=("copy_addresses", "same_uprns"),
            allow_empty=allow_empty,
        )
        step = next(s for s in plan.layer("outcode_addresses").steps if s.id == "same_uprns")
        con = duck.connect()
        try:
            ctx = Context(plan, store, con, Staging(store, plan, "t"), None)
            ctx.refresh_views()
            assert con.execute(to_duckdb(step.sql)).fetchone() == want
            engine = checks.run(ctx, step)
            assert (engine and engine[1]) == want
        finally:
            con.close()


def test_allow_empty_is_only_for_nothing_on_both_sides(tmp_path, store):
    """allow_empty passes two empty sides, never one empty side."""
    plan = reader_plan(tmp_path / "p", allow_empty=True)
    path = tmp_path / "p" / "layers" / "outcode_addresses.yaml"
    ref = "{{ ref('addressbase.addressbase_partitioned') }}"
    path.write_text(path.read_text().replace(ref, ref + " WHERE false"))  # copies nothing
    plan = build_plan(load_workspace(tmp_path / "p"), "development")
    sample_data.write_sample_data(plan, store, addresses=200, ballots=10, seed=8)
    with pytest.raises(BakeError) as err:
        bake(plan, ["outcode_addresses"], store, with_upstream=True)
    assert str(err.value).endswith(
        "left_count=0, right_count=200, left_distinct=0, right_distinct=200"
    )


# ---------------------------------------------------------------- the publish guard


@pytest.fixture(scope="module")
def guarded(tmp_path_factory) -> Plan:
    return build_plan(
        load_workspace(guarded_project(tmp_path_factory.mktemp("g") / "p")), "development"
    )


def test_the_guard_compares_with_files_another_system_wrote_at_the_prefix(guarded, tmp_path):
    """Production's first run: the running system's table is at the live prefix (Hive
    folders, its own file names) and bakery never published it. The guard compares
    with it and stops a truncated ballots CSV, as it would after bakery's own publish."""
    elsewhere = LocalStore(tmp_path / "elsewhere")
    sample_data.write_sample_data(guarded, elsewhere, addresses=2000, ballots=100, seed=11)
    assert bake(guarded, ["current_elections"], elsewhere, with_upstream=True).ok
    joined = guarded.table(JOINED)
    theirs = duckdb.sql(
        f"SELECT * FROM read_parquet('{elsewhere.path(joined.location)}/**/*.parquet', "
        "hive_partitioning=true)"
    ).fetch_arrow_table()

    store = LocalStore(tmp_path / "store")
    sample_data.write_sample_data(guarded, store, addresses=2000, ballots=100, seed=11)
    assert bake(guarded, ["addressbase"], store).ok
    pq.write_to_dataset(
        theirs,
        str(store.path(joined.location)),
        partition_cols=["first_letter"],
        basename_template="000000_{i}",  # not bakery's part-<uuid> names
    )
    had = sum(1 for r in theirs.column("ballot_ids").to_pylist() if r)
    assert 0 < had < 2000
    truncated(guarded, store)
    with pytest.raises(BakeError) as err:
        bake(guarded, ["current_elections"], store)
    message = str(err.value)
    assert message.startswith("check current_elections.ballots_not_lost failed: publish guard: ")
    lost = int(message.split("publish guard: ", 1)[1].split(" of ", 1)[0])
    assert had * 0.9 < lost <= had
    assert f" of {theirs.num_rows} published rows" in message


def test_the_guard_refuses_files_it_cannot_read_as_the_table(guarded, store):
    """A file outside the table's key=value/ folders: not readable as the table, so the
    guard says so (and what to do) instead of comparing with part of it."""
    sample_data.write_sample_data(guarded, store, addresses=300, ballots=20, seed=12)
    assert bake(guarded, ["current_elections"], store, with_upstream=True).ok
    joined = guarded.table(JOINED)
    one = store.list(joined.location)[0]
    stray = joined.location + "stray.parquet"
    store.write_bytes(stray, store.read_bytes(one))
    before = snapshot(store.root)
    with pytest.raises(BakeError) as err:
        bake(guarded, ["current_elections"], store)
    message = str(err.value)
    assert message.startswith(
        f"check current_elections.ballots_not_lost failed: the published {JOINED} cannot be "
        f"read: its files at {joined.location} do not read as the table (files under "
        "first_letter=<value>/): "
    ), message
    assert message.endswith(
        "move the files that are not this table's elsewhere, then run again; nothing was published"
    )
    assert snapshot(store.root) == before
