"""What the step constructs of one layer stack share: the state machine's role, the
grants already made (each once), the purge and publish functions, Athena and S3 access.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aws_cdk import ArnFormat, Duration, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_

from bakery.compile.asl import function_key
from bakery.compile.staging import (
    export_staging_location,
    staged_tables,
    staging_location,
    staging_name,
)
from bakery.constructs import access
from bakery.constructs.functions import BakeryFunction
from bakery.plan import LayerPlan, Plan, TablePlan
from bakery.planning.names import state_machine_name
from bakery.planning.publish_plan import publish_plan

if TYPE_CHECKING:
    from bakery.constructs.core import CoreStack

GLUE_READ = [
    "glue:GetDatabase",
    "glue:GetTable",
    "glue:GetPartition",
    "glue:GetPartitions",
    "glue:BatchGetPartition",
]
GLUE_ADD_PARTITIONS = ["glue:CreatePartition", "glue:BatchCreatePartition"]
# What Athena's INSERT INTO a partitioned table and its result writes need beyond that: the
# Step Functions policy for athena:startQueryExecution.sync has these (and S3 and Glue
# actions on "*"; https://docs.aws.amazon.com/step-functions/latest/dg/athena-iam.html).
GLUE_WRITE = [*GLUE_READ, *GLUE_ADD_PARTITIONS, "glue:UpdatePartition", "glue:GetTables"]
S3_ATHENA_BUCKET = ("s3:ListBucketMultipartUploads",)
ATHENA_QUERY = [
    "athena:StartQueryExecution",
    "athena:GetQueryExecution",
    "athena:GetQueryResults",
    "athena:StopQueryExecution",
    "athena:GetWorkGroup",
]


@dataclass
class LayerContext:
    """What step constructs share inside one layer stack."""

    stack: Stack
    plan: Plan
    layer: LayerPlan
    role: iam.Role  # the state machine's role
    code: lambda_.Code
    core: CoreStack
    substitutions: dict[str, str] = field(default_factory=dict)
    _granted: set[str] = field(default_factory=set)
    _purge: BakeryFunction | None = None
    _publish: BakeryFunction | None = None

    @property
    def staged(self) -> dict[str, TablePlan]:
        """The tables this layer builds in staging and publishes (bakery.compile.staging)."""
        return {t.ref: t for t in staged_tables(self.plan, self.layer)}

    def once(self, key: str) -> bool:
        if key in self._granted:
            return False
        self._granted.add(key)
        return True

    def invoke(self, name: str, function: BakeryFunction) -> None:
        """Let the state machine invoke `function`, known in the definition as `name`."""
        self.substitutions[function_key(name)] = function.function_arn
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"], resources=[function.function_arn]
            )
        )

    def athena(self) -> None:
        """Run queries in the project workgroup, results in its result location."""
        if not self.once("athena"):
            return
        project = self.plan.project
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=ATHENA_QUERY,
                resources=[access.workgroup_arn(self.stack, project.athena.workgroup)],
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["athena:GetDataCatalog"], resources=[access.data_catalog_arn(self.stack)]
            )
        )
        results = (
            project.athena.results
            if project.athena.results.endswith("/")
            else project.athena.results + "/"
        )
        access.grant_s3(
            self.role,
            results,
            access.S3_READ + access.S3_WRITE,
            "Athena query results",
            S3_ATHENA_BUCKET,
        )

    def read_table(self, ref: str) -> None:
        if not self.once(f"read:{ref}"):
            return
        table = self.plan.table(ref)
        self.athena()
        self._glue(table, GLUE_READ)
        access.grant_s3(self.role, table.location, access.S3_READ, f"Athena reads {ref}")
        if ref in self.staged:  # read from staging until the layer publishes
            self._glue(table, GLUE_READ, staging=True)
            access.grant_s3(
                self.role,
                staging_location(table),
                access.S3_READ,
                f"Athena reads the staging of {ref}",
            )

    def write_table(self, ref: str) -> None:
        if not self.once(f"write:{ref}"):
            return
        table = self.plan.table(ref)
        self.athena()
        self._glue(table, GLUE_WRITE)
        if ref not in self.staged:
            access.grant_s3(
                self.role,
                table.location,
                access.S3_READ + access.S3_WRITE,
                f"Athena writes {ref}",
                S3_ATHENA_BUCKET,
            )
            return
        # Staged: Athena writes (and repairs) the staging table only; on live it only
        # lists and reads, to load the partitions the publish Lambda has copied there.
        self._glue(table, GLUE_WRITE, staging=True)
        access.grant_s3(
            self.role,
            staging_location(table),
            access.S3_READ + access.S3_WRITE,
            f"Athena writes the staging of {ref}",
            S3_ATHENA_BUCKET,
        )
        access.grant_s3(
            self.role,
            table.location,
            access.S3_READ,
            f"MSCK REPAIR loads the partitions of the published {ref}",
        )

    def _glue(self, table: TablePlan, actions: list[str], staging: bool = False) -> None:
        name = staging_name(table) if staging else table.name
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=sorted(set(actions)),
                resources=access.glue_arns(self.stack, table.glue_database, [name]),
            )
        )

    def publish_function(self) -> BakeryFunction | None:
        """The layer's publish Lambda (when it stages anything), scoped to the prefixes of
        its publish plan: its tables' and its exports' destinations."""
        exports = publish_plan(self.layer).exports
        if self._publish is None and (self.staged or exports):
            self._publish = BakeryFunction(
                self.stack,
                "PublishFunction",
                code=self.code,
                handler="bakery.lambdas.publish.handler",
                description=(
                    f"bakery {self.layer.name}: publish a staged table (copy staging over "
                    "live, delete stale live files, clear staging)"
                ),
                timeout=Duration.minutes(15),
                memory_mb=512,
            )
            for ref, table in self.staged.items():
                access.grant_s3(
                    self._publish.role,
                    staging_location(table),
                    access.S3_READ + access.S3_DELETE,
                    f"publish reads then clears the staging of {ref}",
                )
                access.grant_s3(
                    self._publish.role,
                    table.location,
                    access.S3_READ + access.S3_WRITE + access.S3_DELETE,
                    f"publish copies what changed into {ref} and deletes its stale files",
                )
            for export in exports:
                access.grant_s3(
                    self._publish.role,
                    export_staging_location(export.destination),
                    access.S3_READ + access.S3_DELETE,
                    f"publish reads then clears the staged files of {export.step}",
                )
                access.grant_s3(
                    self._publish.role,
                    export.destination,
                    access.S3_READ + access.S3_WRITE + access.S3_DELETE,
                    f"publish copies the files of {export.step} and deletes stale ones",
                )
            self.invoke("publish", self._publish)
        return self._publish

    def distributed_map(self) -> None:
        """A Distributed Map (a fan-out over query rows) runs each row as a child execution
        of this state machine: the role starts, follows and stops those executions."""
        if not self.once("distributed-map"):
            return
        name = state_machine_name(self.plan, self.layer.name)
        executions = self.stack.format_arn(
            service="states",
            resource="execution",
            resource_name=f"{name}/*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        # cdk-nag names the resource with the stack's region when it is known at synth.
        region = "<AWS::Region>" if Token.is_unresolved(self.stack.region) else self.stack.region
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["states:StartExecution"],
                resources=[access.state_machine_arn(self.stack, name)],
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["states:DescribeExecution", "states:StopExecution"],
                resources=[executions],
            )
        )
        access.acknowledge(
            self.role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:{region}:"
            f"<AWS::AccountId>:execution:{name}/*]",
            "The child executions a Distributed Map starts for this state machine: their "
            "names are made at run time, under this state machine's name only.",
        )

    def purge_function(self) -> BakeryFunction:
        if self._purge is None:
            self._purge = BakeryFunction(
                self.stack,
                "PurgeFunction",
                code=self.code,
                handler="bakery.lambdas.purge.handler",
                description=f"bakery {self.layer.name}: empty a table prefix before it is rebuilt",
                timeout=Duration.minutes(15),
                memory_mb=512,
            )
            self.invoke("purge", self._purge)
        return self._purge
