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

`release` is the release after a run that did not succeed (FAILED, TIMED_OUT, ABORTED),
invoked by the layer stack's rule on Step Functions' status-change event
(bakery.compile.lock says why there): the same conditional delete and re-queue as the
states that release it after success.
"""

from __future__ import annotations

import json
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


def release(
    dynamodb: Any,
    sqs: Any,
    table: str,
    layer: str,
    execution_arn: str,
    queue_url: str | None,
) -> dict[str, Any]:
    """{"released", "requeued"}: the lock deleted if `execution_arn` still holds it, and one
    trigger sent to `queue_url` when starts were deferred on it."""
    try:
        old = dynamodb.delete_item(
            TableName=table,
            Key={"layer": {"S": layer}},
            ConditionExpression="#holder = :me",
            ExpressionAttributeNames={"#holder": "holder"},
            ExpressionAttributeValues={":me": {"S": execution_arn}},
            ReturnValues="ALL_OLD",
        ).get("Attributes", {})
    except dynamodb.exceptions.ConditionalCheckFailedException:
        # Released already (a repeated event), or expired and taken over: the new holder
        # answers the deferred triggers.
        return {"released": False, "requeued": False}
    deferred = old.get("deferred", {}).get("N")
    if deferred is None or not queue_url:
        return {"released": True, "requeued": False}
    sqs.send_message(
        QueueUrl=queue_url,
        # The message the success path sends (bakery.compile.lock.release_states).
        MessageBody=json.dumps(
            {"layer": layer, "requeued_by": execution_arn, "deferred": deferred}
        ),
        MessageGroupId=layer,
        # Its own id, not the body's hash: content-based de-duplication would fold it into
        # a trigger sent in the last five minutes
        # (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/FIFO-key-terms.html);
        # a repeated event's second send is folded into the first.
        MessageDeduplicationId=execution_arn.rsplit(":", 1)[-1],
    )
    return {"released": True, "requeued": True}


def release_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Event (the release rule's input): {"table", "layer", "execution_arn", "queue_url"?}."""
    import boto3

    return release(
        boto3.client("dynamodb"),
        boto3.client("sqs"),
        event["table"],
        event["layer"],
        event["execution_arn"],
        event.get("queue_url") or None,
    )
