"""One construct per step type: the AWS resources and permissions a step needs.

The states themselves come from `bakery.compile.asl` (pure Python over the
plan); a step construct here makes what those states call — Lambda functions,
IAM grants on the state machine role for exactly the tables the step reads
and writes — and registers the ARNs the definition refers to.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from constructs import Construct

from bakery.compile.asl import partition_values
from bakery.compile.staging import export_staging_location, staging_location
from bakery.constructs import access
from bakery.constructs.functions import BakeryFunction
from bakery.constructs.layer_context import LayerContext
from bakery.kinds import kind_of
from bakery.kinds.export_by_key import ExportStepPlan
from bakery.kinds.lambda_ import LambdaStepPlan
from bakery.plan import StepPlan


class StepConstruct(Construct):
    """Base: one step of a layer; subclasses add what their kind needs."""

    def __init__(self, scope: Construct, id: str, *, ctx: LayerContext, step: StepPlan) -> None:
        super().__init__(scope, id)
        self.ctx = ctx
        self.step = step
        self.build()

    def build(self) -> None:
        raise NotImplementedError


class PurgePrefixStep(StepConstruct):
    """Empty a table's prefix with the layer's purge Lambda (delete rights on that prefix only).

    A staged table is purged in staging: the live prefix is not the purge Lambda's to touch.
    """

    def build(self) -> None:
        fn = self.ctx.purge_function()
        location = self.step.location or ""
        staged = [self.ctx.staged[r] for r in self.step.writes if r in self.ctx.staged]
        if staged:
            location = staging_location(staged[0])
        access.grant_s3(
            fn.role,
            location,
            access.S3_DELETE,
            f"step {self.step.qualified_id} empties this prefix",
        )


class AthenaQueryStep(StepConstruct):
    """A SELECT wrapped in UNLOAD (INSERT INTO inside for_each), run by Athena .sync."""

    def build(self) -> None:
        for ref in self.step.reads:
            self.ctx.read_table(ref)
        for ref in self.step.writes:
            self.ctx.write_table(ref)
        if kind_of(self.step).writes_through_query and not isinstance(self.node.scope, ForEachStep):
            # Each UNLOAD attempt first empties its destination with the purge Lambda, whose
            # delete rights come from the purge step the plan puts before it.
            self.ctx.purge_function()


class GeoJoinStep(AthenaQueryStep):
    """Point-in-polygon UNLOAD, one query per fan-out value in a Map."""


class RefreshPartitionsStep(AthenaQueryStep):
    """MSCK REPAIR TABLE: list the table's prefix and add its partitions to Glue."""


class CheckStep(AthenaQueryStep):
    """A query that returns rows only when the check fails, then Choice and Fail."""


class LambdaStep(StepConstruct):
    """A handler from bakery/lambdas with the tables and SSM parameters the spec names."""

    step: LambdaStepPlan

    def build(self) -> None:
        step = self.step
        stack = self.ctx.stack
        environment = dict(self.step.environment)  # rendered for the environment
        environment.update(step.ssm_parameters)  # names of the parameters, read at run time
        fn = BakeryFunction(
            self,
            "Handler",
            code=self.ctx.code,
            handler=step.handler,
            description=self.step.description or f"bakery step {self.step.qualified_id}",
            timeout=Duration.seconds(step.timeout_seconds),
            memory_mb=step.memory_mb,
            ephemeral_storage_mb=step.ephemeral_storage_mb,
            environment=environment,
            pandas=True,
        )
        for ref in self.step.reads:
            loc = self.ctx.plan.table(ref).location
            access.grant_s3(fn.role, loc, access.S3_READ, f"{step.handler} reads {ref}")
        for ref in self.step.writes:
            # The publish plan stages a Lambda's table like any other: the handler gets
            # the staged location as input and may write only there. Delete too: it
            # replaces the files of its staging (ee_boundary_reviews removes the
            # partitions no longer selected); the layer's publish copies them over live.
            access.grant_s3(
                fn.role,
                staging_location(self.ctx.plan.table(ref)),
                access.S3_READ + access.S3_WRITE + access.S3_DELETE,
                f"{step.handler} writes the staging of {ref}",
            )
        if step.ssm_parameters:
            fn.role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["ssm:GetParameter"],
                    resources=[
                        access.ssm_parameter_arn(stack, name)
                        for name in sorted(set(step.ssm_parameters.values()))
                    ],
                )
            )
        self.ctx.invoke(self.step.id, fn)


class ExportByKeyStep(StepConstruct):
    """One file per key value: a Map of export Lambdas over the partitions, then stale deletion."""

    step: ExportStepPlan

    def build(self) -> None:
        step, ctx = self.step, self.ctx
        table = ctx.plan.table(step.reads[0])
        destination = step.location or ""
        export = BakeryFunction(
            self,
            "Export",
            code=ctx.code,
            handler="bakery.lambdas.export_by_key.handler",
            description=f"bakery {step.qualified_id}: one file per {step.key}",
            timeout=Duration.minutes(15),
            memory_mb=1769,  # ~3x the measured 597 MiB peak on a 5M-row letter (README)
            pandas=True,
        )
        # The publish plan stages the export: it reads the staged table (when this layer
        # writes it) and writes into its staged folder, which the purge Lambda empties
        # first; the layer's publish Lambda copies the folder over the destination.
        read_from = staging_location(table) if table.ref in ctx.staged else table.location
        staged = export_staging_location(destination)
        access.grant_s3(export.role, read_from, access.S3_READ, f"reads {table.ref}")
        access.grant_s3(
            export.role,
            staged,
            access.S3_READ + access.S3_WRITE,
            f"writes the {step.key} files into staging",
        )
        ctx.invoke(f"{step.id}_export", export)
        access.grant_s3(
            ctx.purge_function().role,
            staged,
            access.S3_DELETE,
            f"step {step.qualified_id} empties its staged folder",
        )
        if table.partition_keys and partition_values(ctx.plan, table) is None:
            # Partition values not fixed at synth are listed with an Athena query, whose
            # rows a Distributed Map reads.
            ctx.read_table(table.ref)
            ctx.distributed_map()


class ForEachStep(StepConstruct):
    """A Map over fixed values or the rows of a query, running its inner steps per item."""

    def build(self) -> None:
        for ref in self.step.reads:
            self.ctx.read_table(ref)
        for child in self.step.children:
            STEP_CONSTRUCTS[child.kind](self, child.id, ctx=self.ctx, step=child)
        if self.step.over_sql is not None:
            self.ctx.athena()  # the row query, and its result file the Map reads
            self.ctx.distributed_map()


# The CDK back-end's table: one construct per kind (tests/spec/test_kinds.py checks it
# covers every registered kind).
STEP_CONSTRUCTS: dict[str, type[StepConstruct]] = {
    "purge_prefix": PurgePrefixStep,
    "athena_query": AthenaQueryStep,
    "geo_join": GeoJoinStep,
    "refresh_partitions": RefreshPartitionsStep,
    "check": CheckStep,
    "lambda": LambdaStep,
    "export_by_key": ExportByKeyStep,
    "for_each": ForEachStep,
}
