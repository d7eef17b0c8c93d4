"""The start lock of a `singleton: true` layer, and what an execution that finds it taken does.

    start -> take the lock (Lambda) -> lock taken? -- no --> already running (Succeed)
          -> steps ... -> release the lock [-> re-queue the deferred trigger] -> succeeded
    FAILED, TIMED_OUT or ABORTED -> the layer stack's release rule -> the same release,
          by bakery.lambdas.singleton.release (a Lambda)

Why a lock: two starts at once (`bakery run` and a trigger) must not both purge and write
the same staging prefix. ListExecutions cannot tell: it is eventually consistent
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_ListExecutions.html),
so two executions started together may each miss the other. The lock is one DynamoDB item
per layer, taken with a conditional PutItem, which exactly one of two takers wins
(bakery/lambdas/singleton.py; a Lambda, because the lock's expiry needs the clock, which
no intrinsic function reads). It expires `timeout_minutes` plus LOCK_MARGIN_SECONDS
after it is taken, later than the execution's own timeout.

The success path releases the lock in the definition. Every other end is released from
outside it: a timed-out or aborted execution runs no further state (no catcher sees a
top-level execution failure,
https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html), and
rewriting every Fail state into release-then-fail would change the error and cause each
one reports. Instead Step Functions' "Execution Status Change" event for FAILED,
TIMED_OUT or ABORTED (https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html)
invokes the release Lambda (bakery/constructs/layer.py), which deletes the lock if that
execution still holds it and re-queues what it deferred, as the success path does. Those
events are delivered best effort
(https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-states.html): when one is
lost the expiry still frees the lock.

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

from typing import TYPE_CHECKING

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
RELEASE = "release the lock"
REQUEUE = "re-queue the deferred trigger"
RELEASE_FAILED = "releasing the lock failed"
REQUEUE_FAILED = "re-queueing failed"
TAKEN = "lock taken?"
ALREADY_RUNNING = "already running"
# The end statuses of an execution that did not reach the release states; the same as the
# alert rule's (bakery/constructs/alerts.py), which the layer stack's release rule uses.
FAILED_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")


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
            # The Default is the run itself: what follows a state's Next or Default is the
            # happy path (tests/aws/test_aws_staging.py reads the order that way).
            "Choices": [
                {"Variable": "$.lock.taken", "BooleanEquals": False, "Next": ALREADY_RUNNING}
            ],
            "Default": next_,
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


def release_states(c: LayerCompiler, next_: str) -> str:
    """release the lock [-> deferred while running? -> re-queue] -> next_ (the run's end).

    A release or re-queue that fails ends in a Fail state of its own (the alert says why
    the next runs wait); the execution is then FAILED, and the failure release (the rule
    in bakery/constructs/layer.py) tries once more."""
    layer = c.layer
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
    after_release = next_
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
        send = c.add(
            REQUEUE,
            {
                "Type": "Task",
                "Comment": "Triggers arrived during this run: run the layer once more.",
                "Resource": SQS_SEND_MESSAGE,
                "Parameters": {
                    "QueueUrl": TRIGGER_QUEUE_URL,
                    # The same message as the failure release's (bakery.lambdas.singleton).
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
            "deferred while running?",
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
        RELEASE,
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
