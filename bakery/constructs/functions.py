"""Lambda functions from bakery/lambdas, packaged without Docker.

The code asset is a staged folder holding only the `bakery.lambdas` package
(every handler module, plus an empty `bakery/__init__.py`), so handlers are
importable as `bakery.lambdas.<module>.handler` exactly as the specs name them,
and the asset hash changes only when a handler file changes. Third-party
libraries (pyarrow, pg8000) come from the AWS-managed "AWS SDK for pandas" layer, the
version bakery.yaml's `pandas_layer_arn` names for the environment.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Size
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from bakery.constructs.policies import BudgetedRole
from bakery.errors import BakeryError

LAMBDAS_DIR = Path(__file__).resolve().parent.parent / "lambdas"
RUNTIME = lambda_.Runtime.PYTHON_3_14
# Where a stack keeps bakery.yaml's pandas_layer_arn for its functions (set_pandas_layer).
PANDAS_LAYER_CONTEXT = "bakery:pandas-layer-arn"


def stage_code(build_dir: Path) -> Path:
    """Copy bakery/lambdas/*.py (and *.pem) into build_dir/lambda/bakery/lambdas/; return
    build_dir/lambda."""
    root = build_dir / "lambda"
    target = root / "bakery" / "lambdas"
    if root.exists():
        shutil.rmtree(root)
    target.mkdir(parents=True)
    (root / "bakery" / "__init__.py").write_text('"""bakery Lambda handlers."""\n')
    # .pem: CA bundles a handler may name (ee_connection's DATABASE_CA_BUNDLE_FILE)
    for source in sorted([*LAMBDAS_DIR.glob("*.py"), *LAMBDAS_DIR.glob("*.pem")]):
        shutil.copyfile(source, target / source.name)
    return root


def set_pandas_layer(stack: Construct, arn: str | None) -> None:
    """Let the functions of `stack` (which has no children yet) use the layer version `arn`."""
    if arn:
        stack.node.set_context(PANDAS_LAYER_CONTEXT, arn)


def pandas_layer_arn(scope: Construct) -> str:
    arn = scope.node.try_get_context(PANDAS_LAYER_CONTEXT)
    if not arn:  # `bakery validate` refuses this first
        raise BakeryError(
            f"{scope.node.path} needs the AWS SDK for pandas layer: set pandas_layer_arn "
            "in bakery.yaml (docs/aws.md, 'The AWS SDK for pandas layer')"
        )
    return str(arn)


class BakeryFunction(Construct):
    """A Lambda with its own role (no managed policies) and its own log group."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        code: lambda_.Code,
        handler: str,
        description: str,
        timeout: Duration | None = None,
        memory_mb: int = 512,
        ephemeral_storage_mb: int = 512,
        environment: dict[str, str] | None = None,
        pandas: bool = False,
    ) -> None:
        super().__init__(scope, id)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=logs.RetentionDays.THREE_MONTHS,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.role = BudgetedRole(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{description} (bakery Lambda)",
        )
        self.log_group.grant_write(self.role)
        layers = []
        if pandas:
            layers.append(
                lambda_.LayerVersion.from_layer_version_arn(
                    self, "PandasLayer", pandas_layer_arn(self)
                )
            )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            code=code,
            handler=handler,
            description=description[:256],
            timeout=timeout or Duration.minutes(5),
            memory_size=memory_mb,
            ephemeral_storage_size=Size.mebibytes(ephemeral_storage_mb),
            role=self.role,
            environment=environment or None,
            log_group=self.log_group,
            layers=layers or None,
            architecture=lambda_.Architecture.X86_64,
        )

    @property
    def function_arn(self) -> str:
        return self.function.function_arn
