"""The start lock of a `singleton: true` layer, and what an execution that finds it taken does.

    start -> take the lock (Lambda) -> lock taken? -- no --> already running (Succeed)
          -> steps ... -> release the lock [-> re-queue the deferred trigger] -> succeeded
    every Fail after the lock is taken -> <that name> (Pass: keeps its error and cause)
          -> release the lock after a failure [-> re-queue ...] -> run failed (Fail)

Why a lock: two starts at once (`bakery run` and a trigger) must not both purge and write
the same staging prefix. ListExecutions cannot tell: it is eventually consistent
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_ListExecutions.html),
so two executions started together may each miss the other. The lock is one DynamoDB item
per layer, taken with a conditional PutItem, which exactly one of two takers wins
(bakery/lambdas/singleton.py; a Lambda, because the lock's expiry needs the clock, which
no intrinsic function reads). It expires `timeout_minutes` plus LOCK_MARGIN_SECONDS
after it is taken, later than the execution's own timeout: a timed-out or aborted
execution runs no state that could release it
(https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html: no
catcher for a top-level execution failure), so only that expiry frees it.

"Already running" is not a failure: the execution ends in Succeed, which the alert rule
(bakery/constructs/alerts.py: FAILED, TIMED_OUT, ABORTED) does not match. When the layer
has a trigger queue, the deferred trigger is counted on the lock item, and the holder,
releasing the lock, sends one message to its own queue for all of them: the layer runs
once more after it, on what changed meanwhile (the queue's delivery delay spaces the
runs; a FIFO queue has no per-message delay,
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html).
The message has its own de-duplication id (the holder's execution name): content-based
de-duplication would otherwise fold it into a trigger of the last five minutes
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/FIFO-queues-exactly-once-processing.html).
A layer without triggers (run by `bakery run` only) counts nothing: the second run ends
`already running` and `bakery run` says so (exit 3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bakery.compile.states import retry
from bakery.planning.model import LayerPlan

if TYPE_CHECKING:
    from bakery.compile.asl import LayerCompiler

# DefinitionSubstitutions the layer stack fills in (bakery/constructs/layer.py).
LOCK_TABLE = "${LockTable}"
TRIGGER_QUEUE_URL = "${TriggerQueueUrl}"
DYNAMODB_DELETE_ITEM = "arn:aws:states:::dynamodb:deleteItem"
SQS_SEND_MESSAGE = "arn:aws:states:::sqs:sendMessage"
# The lock's key attribute and the lock item's attributes (bakery/lambdas/singleton.py).
LOCK_KEY = "layer"
# How much longer than the layer's timeout a lock lives: covers the time between the
# execution's start and the lock's taking, and clock skew.
LOCK_MARGIN_SECONDS = 300
# The optimized DynamoDB integration names its errors `DynamoDB.<exception>`
# (https://docs.aws.amazon.com/step-functions/latest/dg/connect-ddb.html), after the SDK's
# exception classes, as for Athena and Lambda (bakery.compile.states): throttling and
# server errors are retried, the SDK's base exception (unmodelled errors) fewer times. A
# failed condition is not retried: the lock is not this execution's.
CONDITION_FAILED = "DynamoDB.ConditionalCheckFailedException"
RELEASE_RETRY = retry(
    [
        "DynamoDB.ProvisionedThroughputExceededException",
        "DynamoDB.RequestLimitExceededException",
        "DynamoDB.ThrottlingException",
        "DynamoDB.InternalServerErrorException",
        "DynamoDB.SdkClientException",
    ],
    2,
    6,
    60,
) + retry(["DynamoDB.AmazonDynamoDBException"], 2, 3, 30)
# SendMessage: SQS's base exception (throttling among its unmodelled errors) and the SDK's
# client errors. A second send is harmless: its de-duplication id folds it.
SEND_RETRY = retry(["SQS.AmazonSQSException", "SQS.SdkClientException"], 2, 6, 60)

TAKE = "take the lock"
TAKE_FAILED = "taking the lock failed"
RELEASE_FAILED = "releasing the lock failed"
REQUEUE_FAILED = "re-queueing failed"
# The lock's own Fail states: no lock to release (not taken, or its release is what failed).
LOCK_FAILS = {TAKE_FAILED, RELEASE_FAILED, REQUEUE_FAILED}
TAKEN = "lock taken?"
ALREADY_RUNNING = "already running"
RUN_FAILED = "run failed"


def has_trigger_queue(layer: LayerPlan) -> bool:
    """Whether the layer stack makes a trigger queue (bakery/constructs/layer.py)."""
    return bool(layer.triggers.schedule or layer.triggers.events)


def lock_seconds(layer: LayerPlan) -> int:
    """How long a lock lives: longer than any execution of the layer can."""
    return layer.timeout_minutes * 60 + LOCK_MARGIN_SECONDS


def take_states(c: LayerCompiler, next_: str) -> str:
    """take the lock -> lock taken? -> next_, or already running (Succeed)."""
    layer = c.layer
    queue = has_trigger_queue(layer)
    c.add(
        ALREADY_RUNNING,
        {
            "Type": "Succeed",
            "Comment": (
                "Another execution holds the lock: not a failure. "
                + (
                    "It re-queues this trigger when it ends ($.lock.deferred)."
                    if queue
                    else "This layer has no trigger queue: nothing is re-queued."
                )
            ),
        },
    )
    c.add(
        TAKEN,
        {
            "Type": "Choice",
            "Comment": "Only the execution holding the lock runs the steps.",
            "Choices": [{"Variable": "$.lock.taken", "BooleanEquals": True, "Next": next_}],
            "Default": ALREADY_RUNNING,
        },
    )
    failed = c.add(
        TAKE_FAILED,
        {
            "Type": "Fail",
            "Error": f"{layer.name}.lock failed",
            "CausePath": (
                "States.Format('could not take the lock: {}', States.JsonToString($.error))"
            ),
        },
    )
    return c.add(
        TAKE,
        c.lambda_task(
            "singleton",
            {
                "table": LOCK_TABLE,
                "layer": layer.name,
                "execution_arn.$": "$$.Execution.Id",
                "seconds": lock_seconds(layer),
                "note_deferral": queue,
            },
            "Take the layer's lock (a conditional write), or learn who holds it.",
            TAKEN,
            ResultSelector={
                "taken.$": "$.Payload.taken",
                "holder.$": "$.Payload.holder",
                "expires_at.$": "$.Payload.expires_at",
                "deferred.$": "$.Payload.deferred",
            },
            ResultPath="$.lock",
            Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": failed}],
        ),
    )


def release_states(c: LayerCompiler, next_: str, *, failed: bool = False) -> str:
    """release the lock [-> deferred? -> re-queue] -> next_; the name of the first state.

    On the success path (`failed` False) a release or re-queue that fails ends in a Fail
    state of its own (the alert says why the next runs wait); after a failure they go on
    to `next_`, the run's own Fail, whose error is the one that matters."""
    layer = c.layer
    after = " after a failure" if failed else ""
    release_failed = send_failed = next_
    if not failed:
        release_failed = c.add(
            RELEASE_FAILED,
            {
                "Type": "Fail",
                "Comment": "The run succeeded; its lock stays until it expires.",
                "Error": f"{layer.name}.lock release failed",
                "CausePath": (
                    "States.Format('the run succeeded but its lock stays until it expires: "
                    "{}', States.JsonToString($.release_error))"
                ),
            },
        )
        if has_trigger_queue(layer):
            send_failed = c.add(
                REQUEUE_FAILED,
                {
                    "Type": "Fail",
                    "Comment": "Triggers deferred during the run wait for the next trigger.",
                    "Error": f"{layer.name}.requeue failed",
                    "CausePath": (
                        "States.Format('the run succeeded but could not re-queue the triggers "
                        "deferred during it: {}', States.JsonToString($.release_error))"
                    ),
                },
            )
    after_release = next_
    if has_trigger_queue(layer):
        send = c.add(
            f"re-queue the deferred trigger{after}",
            {
                "Type": "Task",
                "Comment": "Triggers arrived during this run: run the layer once more.",
                "Resource": SQS_SEND_MESSAGE,
                "Parameters": {
                    "QueueUrl": TRIGGER_QUEUE_URL,
                    "MessageBody": {
                        "layer": layer.name,
                        "requeued_by.$": "$$.Execution.Id",
                        "deferred.$": "$.released.Attributes.deferred.N",
                    },
                    "MessageGroupId": layer.name,
                    "MessageDeduplicationId.$": "$$.Execution.Name",
                },
                "ResultPath": None,
                "Retry": SEND_RETRY,
                "Catch": [
                    {
                        "ErrorEquals": ["States.ALL"],
                        "ResultPath": "$.release_error",
                        "Next": send_failed,
                    }
                ],
                "Next": next_,
            },
        )
        after_release = c.add(
            "deferred during the failed run?" if failed else "deferred while running?",
            {
                "Type": "Choice",
                "Comment": "Executions that found the lock taken counted themselves on it.",
                "Choices": [
                    {"Variable": "$.released.Attributes.deferred", "IsPresent": True, "Next": send}
                ],
                "Default": next_,
            },
        )
    return c.add(
        f"release the lock{after}",
        {
            "Type": "Task",
            "Comment": "Delete the lock if this execution still holds it.",
            "Resource": DYNAMODB_DELETE_ITEM,
            "Parameters": {
                "TableName": LOCK_TABLE,
                "Key": {LOCK_KEY: {"S": layer.name}},
                "ConditionExpression": "#holder = :me",
                "ExpressionAttributeNames": {"#holder": "holder"},
                "ExpressionAttributeValues": {":me": {"S.$": "$$.Execution.Id"}},
                "ReturnValues": "ALL_OLD",
            },
            "ResultPath": "$.released",
            "Retry": RELEASE_RETRY,
            "Catch": [
                # Not this execution's any more (it expired and was taken over): the new
                # holder answers the deferred triggers.
                {"ErrorEquals": [CONDITION_FAILED], "ResultPath": "$.release_error", "Next": next_},
                {
                    "ErrorEquals": ["States.ALL"],
                    "ResultPath": "$.release_error",
                    "Next": release_failed,
                },
            ],
            "Next": after_release,
        },
    )


def release_on_failure(c: LayerCompiler) -> None:
    """Every top-level Fail state but the lock's own becomes a Pass of the same name that
    keeps its error and cause under $.failure, then releases the lock, then ends in
    `run failed` with that error and cause: the lock is released on every failure path."""
    failures = [n for n, s in c.states.items() if s["Type"] == "Fail" and n not in LOCK_FAILS]
    if not failures:
        return
    c.add(
        RUN_FAILED,
        {
            "Type": "Fail",
            "Comment": "The error and cause of the state that failed (its name is the one before).",
            "ErrorPath": "$.failure.Error",
            "CausePath": "$.failure.Cause",
        },
    )
    release = release_states(c, RUN_FAILED, failed=True)
    for name in failures:
        fail = c.states[name]
        kept: dict[str, Any] = {}
        for field in ("Error", "Cause"):
            if f"{field}Path" in fail:
                kept[f"{field}.$"] = fail[f"{field}Path"]
            else:
                kept[field] = fail.get(field, fail.get("Error", name))
        c.states[name] = {
            "Type": "Pass",
            "Comment": fail.get("Comment", f"{name}: release the lock, then fail."),
            "Parameters": kept,
            "ResultPath": "$.failure",
            "Next": release,
        }
