"""The publish guard: a layer compares its new table with the published one before
publishing, and an empty ballots CSV (a bad night at EveryElection) fails the run with
the numbers while every published file stays as it was."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bakery import sample_data
from bakery.engine import BakeError, bake
from bakery.errors import SpecError
from bakery.plan import build_plan
from bakery.workspace import load_workspace
from tests.local.conftest import BALLOTS, PROJECT, snapshot

# The guard under test, added to a copy of the framework tests' project (which has none):
# at most 5 % of the published addresses may lose every ballot in one run.
GUARD = """
  - type: check
    id: ballots_not_lost
    check:
      kind: publish_guard
      table: current_ballots_joined_to_address_base
      key: uprn
      column: ballot_ids
      max_emptied_percent: 5

"""


def guarded_project(root: Path) -> Path:
    """tests/fixtures/project with GUARD before current_elections' first export."""
    shutil.copytree(PROJECT, root)
    layer = root / "layers" / "current_elections.yaml"
    text = layer.read_text()
    at = text.index("  - type: export_by_key")
    layer.write_text(text[:at] + GUARD.lstrip("\n") + text[at:])
    return root


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    return build_plan(
        load_workspace(guarded_project(tmp_path_factory.mktemp("p") / "p")), "development"
    )


@pytest.fixture
def project_copy(tmp_path):
    return guarded_project(tmp_path / "project")


def ballots_file(plan, store) -> str:
    files = store.list(plan.table(BALLOTS).location)
    assert len(files) == 1
    return files[0]


def baked_once(plan, store):
    sample_data.write_sample_data(plan, store, addresses=3000, ballots=150, seed=11)
    assert bake(plan, ["current_elections"], store, with_upstream=True).ok
    return snapshot(store.root)


def truncated(plan, store, keep: int = 2) -> None:
    """The ballots CSV cut after `keep` rows: not empty (the min_rows input guard passes),
    but most addresses lose their ballots: a truncated export on a bad night."""
    uri = ballots_file(plan, store)
    lines = store.read_bytes(uri).decode().splitlines(keepends=True)
    store.write_bytes(uri, "".join(lines[: 1 + keep]).encode())


def test_truncated_ballots_csv_fails_with_the_numbers_and_publishes_nothing(plan, store):
    before = baked_once(plan, store)
    truncated(plan, store)
    with pytest.raises(BakeError) as err:
        bake(plan, ["current_elections"], store)
    message = str(err.value)
    assert message.startswith("check current_elections.ballots_not_lost failed: publish guard: ")
    # every address that had a ballot loses it: the numbers are the published ones
    published = plan.table("current_elections.current_ballots_joined_to_address_base")
    import duckdb

    had, total = duckdb.sql(
        "SELECT count_if(len(ballot_ids) > 0), count(*) FROM read_parquet("
        f"'{store.path(published.location)}/**/*.parquet')"
    ).fetchone()
    assert 0 < had < total
    lost = int(message.split("publish guard: ", 1)[1].split(" of ", 1)[0])
    assert had * 0.9 < lost <= had  # nearly every address with a ballot loses it
    assert f" {lost} of {total} published rows" in message
    tenths = round(lost * 1000 / total)
    assert f"({tenths // 10}.{tenths % 10} %" in message
    assert "more than the 5 % allowed" in message
    after = snapshot(store.root)
    csv_key = ballots_file(plan, store).removeprefix("s3://")
    after.pop(csv_key), before.pop(csv_key)  # the input this test emptied
    assert after == before  # bytes and mtimes of every published file


def test_a_small_change_passes(plan, store):
    baked_once(plan, store)
    uri = ballots_file(plan, store)
    lines = store.read_bytes(uri).decode().splitlines(keepends=True)
    store.write_bytes(uri, "".join(lines[:-1]).encode())  # one polygon piece fewer
    assert bake(plan, ["current_elections"], store).ok


def test_first_run_has_nothing_to_compare(plan, store):
    sample_data.write_sample_data(plan, store, addresses=500, ballots=20, seed=2)
    truncated(plan, store)
    assert bake(plan, ["current_elections"], store, with_upstream=True).ok


def test_guard_must_run_before_the_exports(project_copy):
    layer = project_copy / "layers" / "current_elections.yaml"
    text = layer.read_text()
    start = text.index("  - type: check\n    id: ballots_not_lost")
    end = text.index("  - type: export_by_key")
    guard = text[start:end]
    layer.write_text(text[:start] + text[end:] + "\n" + guard)
    with pytest.raises(SpecError) as err:
        build_plan(load_workspace(project_copy), "development")
    assert "before the first export_by_key" in str(err.value)


def test_guard_compares_only_a_table_the_layer_rebuilds(project_copy):
    layer = project_copy / "layers" / "current_elections.yaml"
    text = layer.read_text()
    text = text.replace(
        "      table: current_ballots_joined_to_address_base\n      key: uprn",
        "      table: current_ballots\n      key: election_id",
    )
    text = text.replace("      column: ballot_ids\n", "      column: geometry\n")
    layer.write_text(text)
    with pytest.raises(SpecError) as err:
        build_plan(load_workspace(project_copy), "development")
    assert "is not written by a query of this layer" in str(err.value)
