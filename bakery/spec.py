"""The spec language: pydantic models of the project file and of one layer file.

These models check the shape of each file on its own. Everything that needs
more than one file (references, cycles, locations, SQL) is checked while the
plan is built, in `bakery.plan`. Each step kind's model lives with the kind
(`bakery.kinds`); the layer's step union is made from that registry, and the
models are re-exported here so `spec.AthenaQuery` and the like keep working.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import (
    AfterValidator,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from bakery.aws_limits import LAMBDA_LAYER_VERSION_ARN, LAYER_VERSION_ARN
from bakery.cron import check_schedule, schedule_pattern
from bakery.kinds import KINDS, InnerStep, spec_models
from bakery.kinds.athena_query import AthenaQuery
from bakery.kinds.check import (
    CHECK_KINDS,
    Check,
    CheckKind,
    MinRows,
    NoRows,
    OneDistinct,
    PublishGuard,
    SameSet,
    ValidGeometry,
)
from bakery.kinds.export_by_key import ExportByKey
from bakery.kinds.for_each import ForEach, QuerySource, ValuesSource
from bakery.kinds.geo_join import FanOut, GeoJoin, Points, Polygons
from bakery.kinds.glue_table import GlueTable
from bakery.kinds.lambda_ import Lambda
from bakery.kinds.purge_prefix import PurgePrefix
from bakery.spec_types import (
    BUCKET_PATTERN,
    IDENTIFIER_PATTERN,
    BucketName,
    Column,
    Csv,
    EnvName,
    Identifier,
    LayerName,
    Literal_,
    Sample,
    StepBase,
    StepName,
    Strict,
    TableRef,
    VariableName,
    _inside_folder,
)

__all__ = [
    "BUCKET_PATTERN",
    "CHECK_KINDS",
    "AthenaQuery",
    "Check",
    "CheckKind",
    "Column",
    "Csv",
    "ExportByKey",
    "FanOut",
    "ForEach",
    "GeoJoin",
    "GlueTable",
    "InnerStep",
    "Lambda",
    "MinRows",
    "NoRows",
    "OneDistinct",
    "Points",
    "Polygons",
    "PublishGuard",
    "PurgePrefix",
    "QuerySource",
    "SameSet",
    "Sample",
    "StepBase",
    "StepName",
    "TableRef",
    "ValidGeometry",
    "ValuesSource",
]

# ---------------------------------------------------------------- project


# `{{ env }}` in a resource name: the environment's name, so environments never share one.
ENV_PLACEHOLDER = re.compile(r"\{\{\s*env\s*\}\}")
WORKGROUP_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
PREFIX_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,38}$")


def with_env(text: str, env: str) -> str:
    return ENV_PLACEHOLDER.sub(env, text)


class OtherQueries(Strict):
    """Athena queries another system runs in an environment's AWS account."""

    name: str = Field(min_length=1, description="What runs them (named in validate's message).")
    queries: int = Field(ge=1, description="Its Athena DML queries running or queued at once.")
    beside: EnvName = Field(description="An environment whose AWS account it runs in.")


def _layer_version_arn(value: str | None) -> str | None:
    if value is not None and (
        len(value) > LAMBDA_LAYER_VERSION_ARN.maximum or not LAYER_VERSION_ARN.match(value)
    ):
        raise ValueError(
            f"{value!r} is not a Lambda layer version ARN "
            "(arn:aws:lambda:<region>:<account>:layer:<name>:<version>, at most "
            f"{LAMBDA_LAYER_VERSION_ARN.maximum} characters); docs/aws.md says how to look "
            "up the AWS SDK for pandas one"
        )
    return value


PANDAS_LAYER_ARN = (
    "ARN of the AWS SDK for pandas Lambda layer version (pyarrow, pg8000) for the Lambdas' "
    "runtime (Python 3.14, x86_64) in the project's region; docs/aws.md says how to look it up."
)
LayerVersionArn = Annotated[str | None, AfterValidator(_layer_version_arn)]


class Athena(Strict):
    workgroup: str = Field(description="Athena workgroup the queries run in ({{ env }} allowed).")
    results: str = Field(description="s3:// prefix for Athena query results ({{ env }} allowed).")
    bytes_scanned_cutoff: int = Field(
        10 * 1024**3, ge=10 * 1024**2, description="Per-query limit on bytes scanned."
    )
    # Athena counts running and queued DML queries against this per-account, per-Region
    # quota; the next query gets TooManyRequestsException. 25 is the figure AWS's page uses
    # (https://docs.aws.amazon.com/athena/latest/ug/service-limits.html; the defaults per
    # Region: https://docs.aws.amazon.com/general/latest/gr/athena.html).
    active_dml_queries: int = Field(
        25,
        ge=1,
        description=(
            "The AWS account's Athena 'Active DML queries' quota (running plus queued "
            "queries, per Region; the lowest of the accounts the environments use). "
            "`bakery validate` adds up the queries the layers start at once against it."
        ),
    )
    other_queries: list[OtherQueries] = Field(
        default_factory=list,
        description=(
            "Other systems' Athena queries in an environment's account, counted with "
            "every group of layers that start at once there (e.g. the running Data Baker "
            "beside the shadow)."
        ),
    )


class Alerts(Strict):
    """Who hears about a failed, timed-out or aborted execution of any layer."""

    email: list[Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]] = Field(
        default_factory=list, description="Email subscriptions of the alerts topic."
    )
    https: list[Annotated[str, StringConstraints(pattern=r"^https://\S+$")]] = Field(
        default_factory=list, description="HTTPS endpoints subscribed to the alerts topic."
    )
    sentry_dsn: str | None = Field(
        None,
        pattern=r"^https?://\S+@\S+/\d+$",
        description="Sentry DSN: Lambda handlers report their exceptions there when set.",
    )


class Environment(Strict):
    account: str | None = Field(None, pattern=r"^\d{12}$", description="AWS account id.")
    description: str | None = None
    variables: dict[VariableName, Literal_] = Field(
        default_factory=dict, description="Overrides of project variables in this environment."
    )
    alerts: Alerts | None = Field(None, description="Replaces the project's alerts here.")
    pandas_layer_arn: LayerVersionArn = Field(
        None, description=PANDAS_LAYER_ARN + " Replaces the project's here."
    )


class Project(Strict):
    """The project file, `bakery.yaml`, at the root of the repository."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$", description="Product name, used in tags.")
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    environments: dict[EnvName, Environment] = Field(min_length=1)
    glue_database: str = Field(description="Glue database of every table ({{ env }} allowed).")
    athena: Athena
    resource_prefix: str | None = Field(
        None,
        description=(
            "Start of the stack and state machine names, e.g. bakery-{{ env }}: "
            "<prefix>-core, <prefix>-<layer>. Unset: <name>-core-<env>, <name>-<layer>-<env>."
        ),
    )
    buckets: dict[str, BucketName] = Field(
        description="Known buckets by alias. They are imported, never created or deleted."
    )
    tags: dict[str, str] = Field(default_factory=dict)
    variables: dict[VariableName, Literal_] = Field(
        default_factory=dict,
        description="Checked literals for templates (letters, digits, '_', '.', ':', '+', '-').",
    )
    alerts: Alerts = Field(default_factory=Alerts)
    layers_dir: Annotated[str, AfterValidator(_inside_folder)] = Field(
        "layers", description="Folder of the layer files, relative to the project (no '..')."
    )
    pandas_layer_arn: LayerVersionArn = Field(
        None, description=PANDAS_LAYER_ARN + " environments.<env> may replace it."
    )

    def for_env(self, env: str) -> Project:
        """This project with the resource names of environment `env` filled in."""
        athena = self.athena.model_copy(
            update={
                "workgroup": with_env(self.athena.workgroup, env),
                "results": with_env(self.athena.results, env),
            }
        )
        update: dict[str, Any] = {
            "glue_database": with_env(self.glue_database, env),
            "athena": athena,
            "alerts": self.environments[env].alerts or self.alerts,
            "pandas_layer_arn": self.environments[env].pandas_layer_arn or self.pandas_layer_arn,
        }
        if self.resource_prefix is not None:
            update["resource_prefix"] = with_env(self.resource_prefix, env)
        return self.model_copy(update=update)

    def resource_names(self) -> dict[str, str]:
        """What bakery names in AWS, by kind, with placeholders left in."""
        names = {
            "glue_database": self.glue_database,
            "athena workgroup": self.athena.workgroup,
            "athena results": self.athena.results,
        }
        if self.resource_prefix is not None:
            names["resource_prefix"] = self.resource_prefix
        return names

    @model_validator(mode="after")
    def _names_per_environment(self) -> Project:
        checks = {
            "glue_database": (re.compile(IDENTIFIER_PATTERN), "lower-case letters, digits, '_'"),
            "athena workgroup": (WORKGROUP_PATTERN, "letters, digits, '.', '_', '-'"),
            "athena results": (re.compile(r"^s3://[a-z0-9][a-z0-9.-]+/\S*$"), "an s3:// prefix"),
            "resource_prefix": (PREFIX_PATTERN, "lower-case letters, digits, '-', at most 39"),
        }
        rendered = {
            env: {kind: with_env(template, env) for kind, template in self.resource_names().items()}
            for env in self.environments
        }
        for env, names in rendered.items():
            for kind, value in names.items():
                pattern, what = checks[kind]
                if not pattern.match(value):
                    raise ValueError(f"{kind} {value!r} (environment {env}) must be {what}")
        if self.resource_prefix is None:
            return self  # names managed outside bakery: <name>-<layer>-<env> stacks only
        envs = list(self.environments)
        for i, a in enumerate(envs):
            for b in envs[i + 1 :]:
                account_a, account_b = self.environments[a].account, self.environments[b].account
                if account_a and account_b and account_a != account_b:
                    continue
                for kind, value in rendered[a].items():
                    if rendered[b][kind] == value:
                        raise ValueError(
                            f"{kind} {value!r} is the same in environments {a} and {b}, which "
                            "may share an AWS account: put {{ env }} in it"
                        )
        return self


# ---------------------------------------------------------------- steps

# One model per registered kind, in registration order. The union is built at import
# time from the registry, so a type checker cannot see its members: to it, Any.
if TYPE_CHECKING:
    Step = Any
else:
    Step = Annotated[Union[tuple(spec_models())], Field(discriminator="type")]  # noqa: UP007
STEP_TYPES = tuple(k.name for k in KINDS.values() if k.model is not None)


class Triggers(Strict):
    schedule: str | None = Field(
        None,
        description="EventBridge schedule: cron(0 1 * * ? *) or rate(1 day).",
        json_schema_extra={"pattern": schedule_pattern()},
    )
    events: list[str] = Field(default_factory=list, description="EventBridge detail-types.")
    delay_seconds: int = Field(
        300, ge=0, le=900, description="FIFO queue delivery delay: a burst causes one run."
    )

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is not None:
            check_schedule(value)
        return value


class Layer(Strict):
    """One layer file under layers/."""

    name: LayerName
    description: str
    depends_on: list[Identifier] = Field(default_factory=list)
    triggers: Triggers = Field(default_factory=Triggers)
    singleton: bool = Field(
        False,
        description=(
            "One run at a time: a start while one runs ends without running (not a failure); "
            "with triggers, the running one re-queues it as it ends."
        ),
    )
    timeout_minutes: int = Field(
        120, ge=1, le=60 * 24 * 7, description="The state machine's limit for one run."
    )
    steps: list[Step] = Field(min_length=1)
