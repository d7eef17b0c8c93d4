"""The DynamoDB and SQS tasks of a definition (a singleton layer's lock, bakery.compile.lock),
answered against moto.

An optimized integration takes the API's own request parameters and returns its response;
an API error fails the task as `DynamoDB.<code>` or `SQS.<code>`
(https://docs.aws.amazon.com/step-functions/latest/dg/connect-ddb.html). The definition
hands such a Task to the simulator as a `lambda:invoke` of a stand-in function named
after the integration (bakery.simulate.definition), which bakery.simulate.lambdas sends
here: the reply is the service's response itself, so the state's ResultSelector,
ResultPath and Catch see what they would on AWS.

After an execution of a singleton layer that did not succeed, `release_after` does what
the layer stack's release rule does on AWS (bakery.constructs.lock): the interpreter
emits no status-change events.

The layer stack fills in `${LockTable}` and `${TriggerQueueUrl}`; here the lock table is
LOCK_TABLE, made on first use, and a layer's trigger queue is the FIFO queue
`<layer>-trigger.fifo` (a trigger message's group id is its layer, as the rules send it).
"""

from __future__ import annotations

import json
from typing import Any

from bakery.compile.lock import (
    DYNAMODB_DELETE_ITEM,
    LOCK_KEY,
    LOCK_TABLE,
    SQS_SEND_MESSAGE,
    TRIGGER_QUEUE_URL,
    has_trigger_queue,
)
from bakery.planning.model import LayerPlan
from bakery.simulate.errors import TaskError

STAND_IN = "bakery-simulate:"
RESOURCES = {
    DYNAMODB_DELETE_ITEM: ("dynamodb", "delete_item"),
    SQS_SEND_MESSAGE: ("sqs", "send_message"),
}
LOCK_TABLE_NAME = "bakery-simulate-locks"
_PREFIX = {"dynamodb": "DynamoDB", "sqs": "SQS"}


def stand_in(resource: str) -> str:
    """The FunctionName a service Task is handed to the simulator under."""
    return STAND_IN + resource


def client(service: str) -> Any:
    import boto3

    return boto3.client(service)  # moto: bakery.simulate.s3.moto_endpoint sets the endpoint


def lock_table(dynamodb: Any) -> str:
    """The simulated lock table, made if it is not there yet."""
    try:
        dynamodb.describe_table(TableName=LOCK_TABLE_NAME)
    except dynamodb.exceptions.ResourceNotFoundException:
        dynamodb.create_table(
            TableName=LOCK_TABLE_NAME,
            KeySchema=[{"AttributeName": LOCK_KEY, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": LOCK_KEY, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    return LOCK_TABLE_NAME


def trigger_queue_url(sqs: Any, layer: str) -> str:
    """The simulated trigger queue of `layer`, made if it is not there yet."""
    return sqs.create_queue(
        QueueName=f"{layer}-trigger.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]


def resolve(value: Any) -> Any:
    """`value` with the lock table's placeholder replaced by the simulated table's name."""
    if value == LOCK_TABLE:
        return lock_table(client("dynamodb"))
    if isinstance(value, dict):
        return {k: resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v) for v in value]
    return value


def call(function_name: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """Answer the service Task handed over as `function_name` with its `parameters`."""
    from botocore.exceptions import ClientError

    resource = function_name.removeprefix(STAND_IN)
    if resource not in RESOURCES:
        raise TaskError("States.Runtime", f"bakery simulate has no stand-in for {resource}")
    service, operation = RESOURCES[resource]
    api = client(service)
    request = resolve(parameters)
    if service == "sqs":
        if request.get("QueueUrl") == TRIGGER_QUEUE_URL:
            request["QueueUrl"] = trigger_queue_url(api, request["MessageGroupId"])
        if not isinstance(request.get("MessageBody"), str):
            # Step Functions sends a JSON MessageBody as its text.
            request["MessageBody"] = json.dumps(request["MessageBody"])
    try:
        response = getattr(api, operation)(**request)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        name = f"{_PREFIX[service]}.{error.get('Code', 'Error')}"
        raise TaskError(name, error.get("Message") or str(exc)) from None
    response.pop("ResponseMetadata", None)
    return response


def release_after(layer: LayerPlan, execution_arn: str) -> dict[str, Any]:
    """The release rule's Lambda, invoked as the rule would after `execution_arn` of
    `layer` failed, timed out or was aborted."""
    from bakery.lambdas import singleton

    sqs = client("sqs")
    return singleton.release(
        client("dynamodb"),
        sqs,
        lock_table(client("dynamodb")),
        layer.name,
        execution_arn,
        trigger_queue_url(sqs, layer.name) if has_trigger_queue(layer) else None,
    )
