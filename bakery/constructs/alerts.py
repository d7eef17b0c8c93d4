"""Alerts: a failed, timed-out or aborted execution of any layer reaches people.

An EventBridge rule on Step Functions' "Execution Status Change" events of this
environment's state machines (matched by ARN, built from their names, so the core stack
needs nothing from the layer stacks) sends a one-line message to an SNS topic. The
topic's email and HTTPS subscriptions come from `alerts` in bakery.yaml. The topic is
encrypted with a key of its own (EventBridge cannot publish to a topic under the
AWS-managed SNS key) and refuses unencrypted transport.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from bakery.constructs import access
from bakery.spec import Alerts as AlertsSpec

ALERT_STATUSES = ["FAILED", "TIMED_OUT", "ABORTED"]
DETAIL_TYPE = "Step Functions Execution Status Change"


class Alerts(Construct):
    def __init__(
        self, scope: Construct, id: str, *, spec: AlertsSpec, state_machines: list[str], env: str
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.key = kms.Key(
            self,
            "Key",
            description=f"bakery alerts topic ({env})",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy "*" is this key
            )
        )
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name=f"bakery {env} alerts",
            master_key=self.key,
            enforce_ssl=True,
        )
        for address in spec.email:
            self.topic.add_subscription(subscriptions.EmailSubscription(address))
        for url in spec.https:
            self.topic.add_subscription(
                subscriptions.UrlSubscription(url, protocol=sns.SubscriptionProtocol.HTTPS)
            )
        detail = events.EventField.from_path
        self.rule = events.Rule(
            self,
            "ExecutionFailed",
            description=f"bakery {env}: a layer's execution failed, timed out or was aborted",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=[DETAIL_TYPE],
                detail={
                    "status": ALERT_STATUSES,
                    "stateMachineArn": [access.state_machine_arn(stack, n) for n in state_machines],
                },
            ),
            targets=[
                targets.SnsTopic(
                    self.topic,
                    message=events.RuleTargetInput.from_text(
                        f"bakery {env}: {detail('$.detail.name')} of "
                        f"{detail('$.detail.stateMachineArn')} ended {detail('$.detail.status')}"
                        f". Cause: {detail('$.detail.cause')}. Execution: "
                        f"{detail('$.detail.executionArn')}"
                    ),
                )
            ],
        )
