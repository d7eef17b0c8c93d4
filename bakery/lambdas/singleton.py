"""Take the start lock of a `singleton: true` layer (bakery.compile.lock says why a lock).

The lock is one item per layer in a DynamoDB table: {layer, holder (an execution ARN),
expires_at (epoch seconds), taken_at}. A conditional PutItem takes it when there is no
item or when the item has expired (its holder died: timed out or aborted); a caller that
holds it already (a retried invocation) keeps it as it is. DynamoDB applies the condition and the
write atomically, so of two executions started together exactly one takes it
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html).
The expiry is checked here, not left to the table's TTL, which deletes expired items only
within a few days (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ttl-expired-items.html).

A caller that finds the lock taken is deferred. With `note_deferral` (the layer has a
trigger queue) it adds one to the item's `deferred` count, on condition that the same
holder still holds it; the holder reads the count when it releases the lock and
re-queues one trigger. If that condition fails the lock changed hands meanwhile
(released or expired), so the caller tries to take it again.

This runs in a Lambda, not as a DynamoDB task, because the expiry needs the clock.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

ATTEMPTS = 5  # takes and deferrals racing with releases before giving up


class LockContention(RuntimeError):
    """The lock changed hands on every attempt."""


def take(
    dynamodb: Any,
    table: str,
    layer: str,
    execution_arn: str,
    seconds: int,
    note_deferral: bool,
    clock: Any = time.time,
) -> dict[str, Any]:
    """{"taken", "holder", "expires_at", "deferred"}: taken by `execution_arn`, or held by
    `holder` until `expires_at`, with this caller counted on it when `deferred`."""
    key = {"layer": {"S": layer}}
    for _ in range(ATTEMPTS):
        now = int(clock())
        try:
            dynamodb.put_item(
                TableName=table,
                Item={
                    **key,
                    "holder": {"S": execution_arn},
                    "expires_at": {"N": str(now + seconds)},
                    "taken_at": {"S": datetime.fromtimestamp(now, UTC).isoformat()},
                },
                ConditionExpression="attribute_not_exists(#layer) OR #expires < :now",
                ExpressionAttributeNames={"#layer": "layer", "#expires": "expires_at"},
                ExpressionAttributeValues={":now": {"N": str(now)}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return {
                "taken": True,
                "holder": execution_arn,
                "expires_at": now + seconds,
                "deferred": False,
            }
        except dynamodb.exceptions.ConditionalCheckFailedException as exc:
            held = exc.response.get("Item") or {}
        holder = held.get("holder", {}).get("S", "")
        expires = int(held.get("expires_at", {}).get("N", "0"))
        if holder == execution_arn:  # a retried invocation: keep the item and its count
            return {"taken": True, "holder": holder, "expires_at": expires, "deferred": False}
        if not note_deferral:
            return {"taken": False, "holder": holder, "expires_at": expires, "deferred": False}
        try:
            dynamodb.update_item(
                TableName=table,
                Key=key,
                UpdateExpression="ADD #deferred :one",
                ConditionExpression="#holder = :holder AND #expires >= :now",
                ExpressionAttributeNames={
                    "#holder": "holder",
                    "#expires": "expires_at",
                    "#deferred": "deferred",
                },
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":holder": {"S": holder},
                    ":now": {"N": str(now)},
                },
            )
            return {"taken": False, "holder": holder, "expires_at": expires, "deferred": True}
        except dynamodb.exceptions.ConditionalCheckFailedException:
            continue  # released or expired since: take it
    raise LockContention(
        f"the lock of layer {layer} changed hands {ATTEMPTS} times while {execution_arn} "
        "tried to take it"
    )


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Event: {"table", "layer", "execution_arn", "seconds", "note_deferral"}."""
    import boto3

    return take(
        boto3.client("dynamodb"),
        event["table"],
        event["layer"],
        event["execution_arn"],
        int(event["seconds"]),
        bool(event.get("note_deferral")),
    )
