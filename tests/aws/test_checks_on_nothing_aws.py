"""A check never passes because there was nothing to check, through the compiled state
machines (the local side: tests/local/test_checks_on_nothing.py, whose cases these are).

- The publish guard loads the live table's partitions (MSCK REPAIR TABLE of the live
  Glue table) right before its query: on production's first run the catalog has none
  registered, though the running system's files are at the prefix.
- Before the first step that reads another layer's table, a query for one row of it; a
  Fail with the local engine's message when there is none (run with `bakery simulate`'s
  interpreter), unless the step lists the table in its optional_upstream.
- same_set of two empty sides fails on AWS with the local message, unless allow_empty.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_helpers import REPO, Synthesized, asl_validate, resources

from bakery.compile.asl import compile_layer
from bakery.engine import BakeError, bake
from bakery.plan import Plan, build_plan
from bakery.simulate.run import simulate
from bakery.store import LocalStore
from bakery.workspace import load_workspace
from tests.local.test_checks_on_nothing import (
    BOTH_EMPTY,
    NEVER_PUBLISHED,
    reader_plan,
)


def main_path(definition: dict) -> list[str]:
    """Top-level states in the order a successful run passes them (Default of Choices)."""
    states, order, name = definition["States"], [], definition["StartAt"]
    while name and name not in order:
        order.append(name)
        name = states[name].get("Next") or states[name].get("Default")
    return order


@pytest.fixture(scope="module")
def repo_plan() -> Plan:
    return build_plan(load_workspace(REPO), "development")


# ---------------------------------------------------------------- the publish guard


def test_the_guard_loads_the_live_partitions_right_before_its_query(repo_plan):
    layer = repo_plan.layer("current_elections")
    definition = compile_layer(repo_plan, layer).definition
    states, order = definition["States"], main_path(definition)
    load = states["ballots_not_lost live partitions"]
    db = repo_plan.project.glue_database
    # the live table, not its staging copy: that is what the guard compares with
    assert load["Parameters"]["QueryString"] == (
        f"MSCK REPAIR TABLE {db}.current_ballots_joined_to_address_base"
    )
    assert load["Resource"].endswith("athena:startQueryExecution.sync")
    assert load["Catch"][0]["Next"] == "ballots_not_lost failed"
    at = order.index("ballots_not_lost live partitions")
    assert order[at + 1 : at + 4] == [
        "ballots_not_lost",
        "ballots_not_lost results",
        "ballots_not_lost passed?",
    ]
    assert order.index("refresh_current_ballots_joined_to_address_base") < at
    assert at < order.index("publish")
    # the query reads that live table through the catalog
    assert (
        f"awsdatacatalog.{db}.current_ballots_joined_to_address_base"
        in states["ballots_not_lost"]["Parameters"]["QueryString"]
    )


def test_the_role_may_already_load_the_live_partitions(synthesized: Synthesized):
    """MSCK REPAIR of the live table needs no new permission: the state machine loads
    the same partitions after publishing (tests/fixtures/project's current_elections)."""
    stack = synthesized.layer_stacks["current_elections"].stack_name
    policies = resources(synthesized.templates[stack], "AWS::IAM::Policy")
    statements = [
        st
        for name, policy in policies.items()
        if name.startswith("StateMachineRole")
        for st in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    live = "table/dc_data_baker/current_ballots_joined_to_address_base"
    loads = [
        st
        for st in statements
        if "glue:BatchCreatePartition" in st["Action"]
        and any(json.dumps(r).endswith(f'{live}"]]}}') for r in st["Resource"])
    ]
    assert loads, "no glue:BatchCreatePartition on the live table"
    lists = [
        st["Condition"]["StringLike"]["s3:prefix"]
        for st in statements
        if st["Action"] == "s3:ListBucket"
    ]
    assert [
        "addressbase/development/current_ballots_joined_to_address_base/",
        "addressbase/development/current_ballots_joined_to_address_base/*",
    ] in lists


def test_the_definitions_with_probes_and_loads_validate(repo_plan, tmp_path):
    paths = []
    for layer in repo_plan.layers:
        path = tmp_path / f"{layer.name}.asl.json"
        path.write_text(compile_layer(repo_plan, layer).to_json())
        paths.append(path)
    result = asl_validate(*paths)
    assert result.returncode == 0, result.stdout + result.stderr


def test_only_a_check_reading_a_live_partitioned_table_loads_partitions(repo_plan):
    for layer in repo_plan.layers:
        states = compile_layer(repo_plan, layer).definition["States"]
        loads = [n for n in states if n.endswith(" live partitions")]
        # a layer's publish guard, and the vanish guard every export_by_key implies
        assert sorted(loads) == {
            "current_elections": [
                "ballots_not_lost live partitions",
                "export_outcodes_not_vanished live partitions",
            ],
            "current_boundary_changes": [
                "changes_not_lost live partitions",
                "export_outcodes_not_vanished live partitions",
            ],
        }.get(layer.name, [])


# ---------------------------------------------------------------- upstream never published


def test_the_probe_runs_before_the_first_reader(repo_plan):
    for name, step, reader in (
        ("current_elections", "join_ballots_to_addresses", "join_ballots_to_addresses"),
        # a for_each is probed before it, for the first step of its body that reads
        (
            "current_boundary_changes",
            "per_review_and_division_type",
            "addresses_to_boundary_change",
        ),
    ):
        definition = compile_layer(repo_plan, repo_plan.layer(name)).definition
        states, order = definition["States"], main_path(definition)
        probe = "addressbase_partitioned published?"
        at = order.index(probe)
        assert order[at + 1 : at + 3] == [
            "addressbase_partitioned first row",
            "addressbase_partitioned has a row?",
        ]
        first_state = order[at + 3]
        assert first_state.startswith(step), (name, first_state)
        assert not any(
            n.startswith(("join_", "per_review", "one_", "same_")) for n in order[:at]
        ), order[:at]
        db = repo_plan.project.glue_database
        assert states[probe]["Parameters"]["QueryString"] == (
            f'SELECT 1 AS found FROM "{db}"."addressbase_partitioned" LIMIT 1'
        )
        fail = states["addressbase_partitioned unpublished"]
        assert fail["Error"] == "UpstreamNotPublished"
        assert f"step {name}.{reader} reads addressbase.addressbase_partitioned" in fail["Cause"]
    # addressbase reads no other layer's table: no probe
    states = compile_layer(repo_plan, repo_plan.layer("addressbase")).definition["States"]
    assert not [n for n in states if n.endswith(" published?")]


def _simulated(plan: Plan, root: Path):
    return simulate(plan, ["outcode_addresses"], root, project_root=REPO).layers[-1]


def test_a_never_published_upstream_fails_with_the_local_message(tmp_path):
    plan = reader_plan(tmp_path / "p")
    with pytest.raises(BakeError) as local:
        bake(plan, ["outcode_addresses"], LocalStore(tmp_path / "bake"))
    run = _simulated(plan, tmp_path / "sim")
    assert (run.status, run.error) == ("FAILED", "UpstreamNotPublished")
    assert run.cause == str(local.value) == NEVER_PUBLISHED
    assert run.entered()[-1] == "addressbase_partitioned unpublished"
    assert "copy_addresses" not in " ".join(run.entered())  # stopped before the reader


def test_an_optional_upstream_has_no_probe_and_allow_empty_passes(tmp_path):
    plan = reader_plan(tmp_path / "p", optional=("copy_addresses", "same_uprns"), allow_empty=True)
    states = compile_layer(plan, plan.layer("outcode_addresses")).definition["States"]
    assert not [n for n in states if n.startswith("addressbase_partitioned ")]
    run = _simulated(plan, tmp_path / "sim")
    assert (run.status, run.error) == ("SUCCEEDED", None), run.cause


def test_same_set_of_two_empty_sides_fails_with_the_local_message(tmp_path):
    plan = reader_plan(tmp_path / "p", optional=("copy_addresses", "same_uprns"))
    with pytest.raises(BakeError) as local:
        bake(plan, ["outcode_addresses"], LocalStore(tmp_path / "bake"))
    run = _simulated(plan, tmp_path / "sim")
    assert (run.status, run.error) == ("FAILED", "outcode_addresses.same_uprns failed")
    assert run.cause == str(local.value) == BOTH_EMPTY
