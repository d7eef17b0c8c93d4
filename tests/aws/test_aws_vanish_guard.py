"""The vanish guard every export_by_key implies, on AWS: the compiled check loads the
live table's partitions, reads the staged and the live table before the publish states,
and its Choice fails the execution with exactly the local engine's message (moto's
Step Functions interpreter); no row passes."""

from __future__ import annotations

import pytest

from bakery.compile.asl import compile_layer
from bakery.engine import BakeError, bake
from bakery.plan import build_plan
from bakery.store import LocalStore
from bakery.workspace import load_workspace
from tests.aws.test_aws_publish_guard import REPO, ROLE
from tests.aws.test_guards_compile import main_path
from tests.local.test_vanish_guard import LAYER, NEW_LAYER, PROJECT, write_shops

GUARD = "export_outcodes_not_vanished"


@pytest.fixture(scope="module")
def plan():
    return build_plan(load_workspace(REPO), "development")


def test_vanish_guard_loads_live_partitions_and_runs_before_publish(plan):
    layer = plan.layer(LAYER)
    definition = compile_layer(plan, layer).definition
    states = definition["States"]
    assert states[f"{GUARD} live partitions"]["Next"] == GUARD
    # from the guard on, a run passes it before it publishes the table
    after = main_path(states, f"{GUARD} live partitions")
    assert after.index(f"{GUARD} passed?") < after.index("publish")
    # the layer publishes once, after its export (bakery.planning.publish_plan)
    assert after.index("publish") > max(
        i for i, n in enumerate(after) if n.startswith("export_outcodes ")
    )
    db = plan.project.glue_database
    assert states[f"{GUARD} live partitions"]["Parameters"]["QueryString"] == (
        f"MSCK REPAIR TABLE {db}.current_boundary_reviews_joined_to_addressbase"
    )
    sql = states[GUARD]["Parameters"]["QueryString"]
    assert f"{db}.current_boundary_reviews_joined_to_addressbase__staging" in sql
    assert f"awsdatacatalog.{db}.current_boundary_reviews_joined_to_addressbase" in sql
    step = next(s for s in layer.steps if s.id == GUARD)
    assert step.message_column == "failure_message"


def run_verdict(plan, layer: str, guard: str, rows: list[list[str]]) -> dict:
    """The compiled Choice and Fail of the guard, fed GetQueryResults-shaped rows."""
    import json
    import time

    import boto3
    from moto import mock_aws

    states = compile_layer(plan, plan.layer(layer)).definition["States"]
    definition = {
        "StartAt": "query results",
        "States": {
            "query results": {
                "Type": "Pass",
                "Result": {"rows": [{"Data": [{"VarCharValue": v} for v in r]} for r in rows]},
                "ResultPath": "$.check",
                "Next": f"{guard} passed?",
            },
            f"{guard} passed?": dict(states[f"{guard} passed?"], Default="published"),
            f"{guard} did not hold": states[f"{guard} did not hold"],
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


def test_aws_and_local_fail_with_the_same_message(tmp_path):
    import shutil

    root = tmp_path / "project"
    shutil.copytree(PROJECT, root)
    (root / "layers" / "shops.yaml").write_text(NEW_LAYER)
    plan = build_plan(load_workspace(root), "development")
    store = LocalStore(tmp_path / "store")
    raw = plan.table("shops.shops_raw").location + "shops.csv"
    write_shops(store, raw, [("Ayr", "baker"), ("Bath", "grocer"), ("Cork", "baker")])
    assert bake(plan, ["shops"], store).ok
    write_shops(store, raw, [("Dee", "baker")])
    with pytest.raises(BakeError) as err:
        bake(plan, ["shops"], store)
    local = str(err.value)
    message = local.split(": ", 1)[1]
    guard = "export_towns_not_vanished"
    out = run_verdict(plan, "shops", guard, [["failure_message"], [message]])
    assert out["status"] == "FAILED"
    assert out["error"] == f"shops.{guard} failed"
    cause = out["cause"]
    prefix = f"check shops.{guard} failed: "
    if cause.startswith(prefix + "[") and cause.endswith("]"):  # moto, as in the publish guard
        cause = prefix + cause[len(prefix) + 1 : -1]
    assert cause == local
    assert run_verdict(plan, "shops", guard, [["failure_message"]])["status"] == "SUCCEEDED"
