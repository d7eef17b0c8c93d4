"""Is another execution of this state machine running? (Used by `singleton: true` layers.)

`others` lists the RUNNING executions other than the caller, over every page of
list_executions; the state machine stops at once when it is not empty.
"""

from __future__ import annotations

from typing import Any


def running_others(sfn: Any, state_machine_arn: str, execution_arn: str) -> list[str]:
    """ARNs of RUNNING executions of `state_machine_arn` except `execution_arn`, oldest first."""
    found = []
    paginator = sfn.get_paginator("list_executions")
    for page in paginator.paginate(stateMachineArn=state_machine_arn, statusFilter="RUNNING"):
        for execution in page.get("executions", []):
            if execution["executionArn"] != execution_arn:
                found.append((execution["startDate"], execution["executionArn"]))
    return [arn for _, arn in sorted(found)]


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Event: {"state_machine_arn", "execution_arn"} -> {"others": [...], "running": n}."""
    import boto3

    others = running_others(
        boto3.client("stepfunctions"), event["state_machine_arn"], event["execution_arn"]
    )
    return {"others": others, "running": len(others)}
