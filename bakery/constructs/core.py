"""The core stack: what every layer shares.

The Glue database, the Athena workgroup (result location, SSE-S3, enforced
settings, a bytes-scanned cutoff per query), the singleton layers' lock table and the
Lambda that takes a lock, and the alerts (an EventBridge rule on every layer's failed
executions, an SNS topic).
Buckets are never created here: they already exist and are only referenced.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from bakery.compile.lock import LOCK_KEY
from bakery.constructs.alerts import Alerts
from bakery.constructs.functions import BakeryFunction
from bakery.plan import Plan
from bakery.planning.names import state_machine_name


class CoreStack(Stack):
    def __init__(self, scope: Construct, id: str, *, plan: Plan, code_dir: str, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        project = plan.project
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=Aws.ACCOUNT_ID,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=project.glue_database,
                description=f"{project.name} tables ({plan.env}), declared by bakery layers",
            ),
        )
        results = project.athena.results
        self.workgroup = athena.CfnWorkGroup(
            self,
            "WorkGroup",
            name=project.athena.workgroup,
            description=f"{project.name} queries ({plan.env})",
            state="ENABLED",
            recursive_delete_option=False,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                bytes_scanned_cutoff_per_query=project.athena.bytes_scanned_cutoff,
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                requester_pays_enabled=False,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version="Athena engine version 3"
                ),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=results if results.endswith("/") else results + "/",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_S3"
                    ),
                ),
            ),
        )
        self.singleton: BakeryFunction | None = None
        self.locks: dynamodb.Table | None = None
        if any(ly.singleton for ly in plan.layers):
            self._singleton_lock(code_dir)
        self.alerts = Alerts(
            self,
            "Alerts",
            spec=project.alerts,
            state_machines=[state_machine_name(plan, ly.name) for ly in plan.layers],
            env=plan.env,
        )

    def _singleton_lock(self, code_dir: str) -> None:
        """The lock table of the singleton layers (one item per layer, bakery.compile.lock)
        and the Lambda that takes a lock; the layer stacks release it themselves."""
        self.locks = dynamodb.Table(
            self,
            "Locks",
            partition_key=dynamodb.Attribute(name=LOCK_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            # Clears released-late items; the lock's expiry itself is checked on write.
            time_to_live_attribute="expires_at",
            removal_policy=RemovalPolicy.DESTROY,  # locks only: nothing to keep
        )
        self.singleton = BakeryFunction(
            self,
            "SingletonCheck",
            code=lambda_.Code.from_asset(code_dir),
            handler="bakery.lambdas.singleton.handler",
            description="bakery: take the start lock of a singleton layer",
            timeout=Duration.minutes(1),
            memory_mb=256,
        )
        self.singleton.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["dynamodb:PutItem", "dynamodb:UpdateItem"],
                resources=[self.locks.table_arn],
            )
        )
