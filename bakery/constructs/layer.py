"""One stack per layer: its Glue tables, the step resources, one state machine, its triggers."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from bakery.compile.asl import Compiled, compile_layer, function_key
from bakery.compile.lock import TRIGGER_QUEUE_URL
from bakery.compile.staging import staged_tables
from bakery.constructs import access
from bakery.constructs.core import CoreStack
from bakery.constructs.functions import set_pandas_layer
from bakery.constructs.layer_context import LayerContext
from bakery.constructs.lock import LockRelease
from bakery.constructs.policies import BudgetedRole
from bakery.constructs.steps import STEP_CONSTRUCTS
from bakery.constructs.tables import GlueTable
from bakery.constructs.triggers import Triggers
from bakery.plan import LayerPlan, Plan
from bakery.planning import names
from bakery.planning.names import state_machine_name


def construct_id(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


class LayerStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        plan: Plan,
        layer: LayerPlan,
        core: CoreStack,
        code_dir: str,
        **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        set_pandas_layer(self, plan.project.pandas_layer_arn)
        self.layer = layer
        self.add_stack_dependency(
            core, "tables live in the core Glue database; queries in its workgroup"
        )
        self.tables = {
            t.name: GlueTable(
                self, f"Table{construct_id(t.name)}", table=t, database=plan.project.glue_database
            )
            for t in layer.tables
        }
        self.staging_tables = {
            t.name: GlueTable(
                self,
                f"Staging{construct_id(t.name)}",
                table=t,
                database=plan.project.glue_database,
                staging=True,
            )
            for t in staged_tables(plan, layer)
        }
        self.state_machine_name = state_machine_name(plan, layer.name)
        self.role = BudgetedRole(
            self,
            "StateMachineRole",
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
            description=f"bakery layer {layer.name}: run its steps",
        )
        ctx = LayerContext(self, plan, layer, self.role, lambda_.Code.from_asset(code_dir), core)
        steps = Construct(self, "Steps")
        for step in layer.steps:
            STEP_CONSTRUCTS[step.kind](steps, step.id, ctx=ctx, step=step)
        if layer.singleton:
            assert core.singleton is not None
            ctx.invoke("singleton", core.singleton)
        ctx.publish_function()

        self.compiled: Compiled = compile_layer(plan, layer)
        missing = [f for f in self.compiled.functions if function_key(f) not in ctx.substitutions]
        if missing:
            raise RuntimeError(f"layer {layer.name}: no function for {', '.join(missing)}")

        self.logs = logs.LogGroup(
            self,
            "ExecutionLogs",
            log_group_name=names.execution_log_group_name(plan, layer.name),
            retention=logs.RetentionDays.SIX_MONTHS,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=self.state_machine_name,
            definition_body=sfn.DefinitionBody.from_string(self.compiled.to_json()),
            definition_substitutions=dict(sorted(ctx.substitutions.items())),
            role=self.role,
            # No timeout= here: CDK ignores it with DefinitionBody.from_string; the ASL
            # carries TimeoutSeconds.
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self.logs, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
            comment=f"bakery layer {layer.name} ({plan.env})",
        )
        access.acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "Only for the actions AWS defines on no resource: X-Ray PutTraceSegments/"
            "PutTelemetryRecords/GetSampling* (tracing) and the CloudWatch Logs delivery "
            "actions Step Functions needs for execution logging.",
        )
        self.triggers = None
        spec = layer.triggers
        if spec.schedule or spec.events:
            self.triggers = Triggers(
                self,
                "Triggers",
                layer=layer.name,
                spec=spec,
                state_machine_arn=self.state_machine.state_machine_arn,
                queue_name=names.trigger_queue_name(plan, layer.name),
                dead_letter_queue_name=names.dead_letter_queue_name(plan, layer.name),
            )
        if layer.singleton:
            self._singleton_lock(core, lambda_.Code.from_asset(code_dir))

    def _singleton_lock(self, core: CoreStack, code: lambda_.Code) -> None:
        """What the lock states use (bakery.compile.lock): the lock table, to release the
        lock, and the layer's trigger queue, to re-queue the triggers deferred meanwhile;
        and the release after a run that did not succeed (bakery.constructs.lock)."""
        assert core.locks is not None
        used = self.compiled.to_json()
        definition = self.state_machine.node.default_child
        assert isinstance(definition, sfn.CfnStateMachine)
        definition.add_property_override("DefinitionSubstitutions.LockTable", core.locks.table_name)
        self.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["dynamodb:DeleteItem"], resources=[core.locks.table_arn])
        )
        self.lock_release = LockRelease(
            self,
            "LockRelease",
            layer=self.layer.name,
            table=core.locks,
            state_machine_arn=self.state_machine.state_machine_arn,
            triggers=self.triggers,
            code=code,
        )
        if TRIGGER_QUEUE_URL not in used:
            return
        if self.triggers is None:
            raise RuntimeError(f"layer {self.layer.name}: re-queues, but has no trigger queue")
        definition.add_property_override(
            "DefinitionSubstitutions.TriggerQueueUrl", self.triggers.queue_url
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self.triggers.queue_arn])
        )
