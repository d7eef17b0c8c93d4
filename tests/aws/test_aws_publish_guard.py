"""The publish guard on AWS: the compiled check reads the staged table and the live one,
runs before the publish states, and its Choice fails the execution with exactly the
message the local engine gives (executed on moto's Step Functions interpreter)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from bakery import sample_data
from bakery.compile.asl import compile_layer
from bakery.compile.staging import rewrite_sql, staged_tables
from bakery.engine import BakeError, bake
from bakery.plan import build_plan
from bakery.store import LocalStore
from bakery.workspace import load_workspace

ROLE = "arn:aws:iam::123456789012:role/bakery-test"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def plan():
    """The repository's current_elections, which declares the guard."""
    return build_plan(load_workspace(REPO), "development")


def guard_step(plan):
    layer = plan.layer("current_elections")
    return layer, next(s for s in layer.steps if s.id == "ballots_not_lost")


def test_guard_reads_staging_and_live_before_publishing(plan):
    layer, step = guard_step(plan)
    states = compile_layer(plan, layer).definition["States"]
    sql = states["ballots_not_lost"]["Parameters"]["QueryString"]
    assert sql == rewrite_sql(step.sql, staged_tables(plan, layer))
    db = plan.project.glue_database
    assert f"{db}.current_ballots_joined_to_address_base__staging" in sql
    assert f"awsdatacatalog.{db}.current_ballots_joined_to_address_base" in sql
    # the guard comes before the table is published
    order, name = [], "start"
    while "Next" in states[name] or states[name]["Type"] == "Choice":
        state = states[name]
        name = state.get("Next") or state["Default"]
        order.append(name)
    assert order.index("ballots_not_lost passed?") < order.index("publish")
    choice = states["ballots_not_lost passed?"]
    assert choice["Choices"][0]["Next"] == "ballots_not_lost did not hold"


def local_failure(plan, tmp_path) -> str:
    store = LocalStore(tmp_path / "store")
    sample_data.write_sample_data(plan, store, addresses=2000, ballots=100, seed=5)
    assert bake(plan, ["current_elections"], store, with_upstream=True).ok
    (csv,) = store.list(plan.table("current_elections.current_ballots").location)
    lines = store.read_bytes(csv).decode().splitlines(keepends=True)
    store.write_bytes(csv, "".join(lines[:3]).encode())  # truncated: min_rows passes
    with pytest.raises(BakeError) as err:
        bake(plan, ["current_elections"], store)
    return str(err.value)


def run_verdict(plan, rows: list[list[str]]) -> dict:
    """The compiled Choice and Fail of the guard, fed GetQueryResults-shaped rows."""
    layer, _ = guard_step(plan)
    states = compile_layer(plan, layer).definition["States"]
    choice = dict(states["ballots_not_lost passed?"], Default="published")
    definition = {
        "StartAt": "query results",
        "States": {
            "query results": {
                "Type": "Pass",
                "Result": {"rows": [{"Data": [{"VarCharValue": v} for v in r]} for r in rows]},
                "ResultPath": "$.check",
                "Next": "ballots_not_lost passed?",
            },
            "ballots_not_lost passed?": choice,
            "ballots_not_lost did not hold": states["ballots_not_lost did not hold"],
            "published": {"Type": "Succeed"},
        },
    }
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name="eu-west-2")
        arn = sfn.create_state_machine(
            name="guard", definition=json.dumps(definition), roleArn=ROLE
        )["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
        for _ in range(200):
            out = sfn.describe_execution(executionArn=execution)
            if out["status"] != "RUNNING":
                return out
            time.sleep(0.05)
    raise AssertionError("execution did not finish")


def test_aws_and_local_fail_with_the_same_message(plan, tmp_path):
    local = local_failure(plan, tmp_path)
    _, step = guard_step(plan)
    message = local.split(": ", 1)[1]  # the query's failure_message
    out = run_verdict(plan, [[step.message_column], [message]])
    assert out["status"] == "FAILED"
    assert out["error"] == "current_elections.ballots_not_lost failed"
    cause = out["cause"]
    # moto's JSONPath (stepfunctions/parser/asl/utils/json_path.py, extract_json) returns a
    # value whose parent is an array element as a one-item list, which States.Format prints
    # in brackets; Step Functions returns the value itself for this definite path.
    prefix = "check current_elections.ballots_not_lost failed: "
    if cause.startswith(prefix + "[") and cause.endswith("]"):
        cause = prefix + cause[len(prefix) + 1 : -1]
    assert cause == local


def test_aws_guard_passes_when_the_query_returns_no_row(plan):
    _, step = guard_step(plan)
    assert run_verdict(plan, [[step.message_column]])["status"] == "SUCCEEDED"
