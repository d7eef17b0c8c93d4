"""Layer triggers: EventBridge schedule and event rules -> FIFO SQS queue -> Pipe -> state machine.

The rules send a constant message, so FIFO content-based de-duplication folds
a burst of triggers within five minutes into one message, and the queue's
delivery delay (delay_seconds) lets the burst settle before the run starts.
Both queues are named by bakery (bakery.compile.names), within SQS's 80 characters.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_pipes as pipes
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from bakery.constructs.policies import BudgetedRole
from bakery.spec import Triggers as TriggersSpec


class Triggers(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        layer: str,
        spec: TriggersSpec,
        state_machine_arn: str,
        queue_name: str,
        dead_letter_queue_name: str,
    ) -> None:
        super().__init__(scope, id)
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            queue_name=dead_letter_queue_name,
            fifo=True,
            content_based_deduplication=True,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            queue_name=queue_name,
            fifo=True,
            content_based_deduplication=True,
            delivery_delay=Duration.seconds(spec.delay_seconds),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.minutes(5),
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=5, queue=self.dead_letters),
        )
        self.rules: list[events.Rule] = []
        if spec.schedule:
            self._rule(
                "Schedule",
                layer,
                schedule=events.Schedule.expression(spec.schedule),
                description=f"Run bakery layer {layer} on {spec.schedule}",
            )
        if spec.events:
            self._rule(
                "Events",
                layer,
                event_pattern=events.EventPattern(detail_type=sorted(spec.events)),
                description=f"Run bakery layer {layer} on {', '.join(sorted(spec.events))}",
            )
        role = BudgetedRole(
            self,
            "PipeRole",
            assumed_by=iam.ServicePrincipal("pipes.amazonaws.com"),
            description=f"Pipe from the {layer} trigger queue to its state machine",
        )
        self.queue.grant_consume_messages(role)
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["states:StartExecution"], resources=[state_machine_arn])
        )
        self.pipe = pipes.CfnPipe(
            self,
            "Pipe",
            role_arn=role.role_arn,
            source=self.queue.queue_arn,
            target=state_machine_arn,
            description=f"Start bakery layer {layer} from its trigger queue",
            source_parameters=pipes.CfnPipe.PipeSourceParametersProperty(
                sqs_queue_parameters=pipes.CfnPipe.PipeSourceSqsQueueParametersProperty(
                    batch_size=1
                )
            ),
            target_parameters=pipes.CfnPipe.PipeTargetParametersProperty(
                step_function_state_machine_parameters=pipes.CfnPipe.PipeTargetStateMachineParametersProperty(
                    invocation_type="FIRE_AND_FORGET"
                )
            ),
        )
        # Created before its role's policy, a pipe fails with "The provided customer role
        # does not have permissions to call ReceiveMessage on SQS" (aws/aws-cdk#31211): it
        # depends on the role and everything in it, the policies included.
        self.pipe.node.add_dependency(role)

    @property
    def queue_url(self) -> str:
        """The trigger queue's URL (a singleton layer re-queues deferred triggers there)."""
        return self.queue.queue_url

    @property
    def queue_arn(self) -> str:
        return self.queue.queue_arn

    def _rule(self, id: str, layer: str, **props) -> None:
        rule = events.Rule(self, id, **props)
        rule.add_target(
            targets.SqsQueue(
                self.queue,
                message_group_id=layer,
                message=events.RuleTargetInput.from_object({"layer": layer}),
            )
        )
        self.rules.append(rule)
