"""A singleton layer's lock release after a run that did not succeed (bakery.compile.lock):
an EventBridge rule on its state machine's FAILED, TIMED_OUT and ABORTED status changes
invokes a Lambda (bakery.lambdas.singleton.release_handler) with the lock table, the
layer, the execution and the layer's trigger queue.

The Lambda lives in the layer stack, next to the queue it re-queues to: granted from the
core stack, the queue's ARN would make the core stack depend on the layer stack.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from bakery.compile.lock import FAILED_STATUSES
from bakery.constructs.alerts import DETAIL_TYPE
from bakery.constructs.functions import BakeryFunction
from bakery.constructs.triggers import Triggers


class LockRelease(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        layer: str,
        table: dynamodb.ITable,
        state_machine_arn: str,
        triggers: Triggers | None,
        code: lambda_.Code,
    ) -> None:
        super().__init__(scope, id)
        self.function = BakeryFunction(
            self,
            "Function",
            code=code,
            handler="bakery.lambdas.singleton.release_handler",
            description=f"bakery: release the lock of layer {layer} after a failed run",
            timeout=Duration.minutes(1),
            memory_mb=256,
        )
        self.function.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["dynamodb:DeleteItem"], resources=[table.table_arn])
        )
        target_input: dict[str, str] = {
            "table": table.table_name,
            "layer": layer,
            "execution_arn": events.EventField.from_path("$.detail.executionArn"),
        }
        if triggers is not None:
            target_input["queue_url"] = triggers.queue_url
            self.function.role.add_to_principal_policy(
                iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[triggers.queue_arn])
            )
        self.rule = events.Rule(
            self,
            "Rule",
            description=f"bakery: release the lock of layer {layer} when a run fails",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=[DETAIL_TYPE],
                detail={"status": list(FAILED_STATUSES), "stateMachineArn": [state_machine_arn]},
            ),
            targets=[
                targets.LambdaFunction(
                    self.function.function,
                    event=events.RuleTargetInput.from_object(target_input),
                    # EventBridge's default retries (a day, with backoff:
                    # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-retry-policy.html)
                    # are kept: a late release is harmless, being conditional on the holder.
                )
            ],
        )
