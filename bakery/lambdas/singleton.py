"""Is an older execution of this state machine running? (Used by `singleton: true` layers.)

Two executions started close together each see the other RUNNING; if both
stopped, nothing would rebuild. So only the newer one yields: `older` lists the
RUNNING executions that started before the caller (earlier startDate, ties
broken by executionArn order), over every page of list_executions, and the
state machine stops at once when it is not empty. The oldest always proceeds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any


def _parse_start(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def running_older(
    sfn: Any, state_machine_arn: str, execution_arn: str, start_time: Any = None
) -> list[str]:
    """ARNs of RUNNING executions of `state_machine_arn` older than `execution_arn`, oldest first.

    The caller's start comes from the listing (it is RUNNING itself), else from
    `start_time` (the context object's `$$.Execution.StartTime`). When neither
    is known every other RUNNING execution counts as older (stop rather than race).
    """
    running: list[tuple[datetime, str]] = []
    mine = _parse_start(start_time)
    paginator = sfn.get_paginator("list_executions")
    for page in paginator.paginate(stateMachineArn=state_machine_arn, statusFilter="RUNNING"):
        for execution in page.get("executions", []):
            if execution["executionArn"] == execution_arn:
                mine = execution["startDate"]
            else:
                running.append((execution["startDate"], execution["executionArn"]))
    if mine is None:
        return [arn for _, arn in sorted(running)]
    me = (mine, execution_arn)
    return [arn for start, arn in sorted(running) if (start, arn) < me]


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Event: {"state_machine_arn", "execution_arn", "start_time"?} -> {"older": [...]}."""
    import boto3

    older = running_older(
        boto3.client("stepfunctions"),
        event["state_machine_arn"],
        event["execution_arn"],
        event.get("start_time"),
    )
    return {"older": older, "running_older": len(older)}
