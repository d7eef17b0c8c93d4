"""The spec language: pydantic models of the project file and of one layer file.

These models check the shape of each file on its own. Everything that needs
more than one file (references, cycles, locations, SQL) is checked while the
plan is built, in `bakery.plan`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from bakery import hive_types
from bakery.cron import check_schedule

# Athena folds unquoted names to lower case and accepts only these characters
# in Glue table and column names.
IDENTIFIER_PATTERN = r"^[a-z_][a-z0-9_]*$"
Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN, max_length=255)]
# Table names and step ids become Step Functions state names ("refresh_<table> failed"),
# which AWS caps at 80 characters; layer names become stack and state machine names.
StepName = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN, max_length=60)]
LayerName = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN, max_length=40)]
# "layer.table" or "table" (a table of the same layer).
TableRef = Annotated[
    str,
    StringConstraints(pattern=r"^([a-z_][a-z0-9_]*\.)?[a-z_][a-z0-9_]*$", max_length=511),
]
BUCKET_PATTERN = re.compile(r"^(?!\d+\.\d+\.\d+\.\d+$)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _bucket_name(name: str) -> str:
    if not BUCKET_PATTERN.match(name):
        raise ValueError(
            f"{name!r} is not a valid S3 bucket name "
            "(3-63 characters: lower-case letters, digits, '.', '-')"
        )
    return name


BucketName = Annotated[str, AfterValidator(_bucket_name)]

# Environment names and variable values are pasted into S3 locations and SQL text, so
# they are restricted to characters that can neither leave a path segment nor end a
# SQL string literal. Anything else travels as a runtime parameter (param()).
ENV_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
LITERAL_PATTERN = re.compile(r"^[A-Za-z0-9_.:+,-]{0,200}$")  # ',': lists such as "963,964"


def _env_name(name: str) -> str:
    if not ENV_NAME_PATTERN.match(name):
        raise ValueError(
            f"environment name {name!r} must be 1-32 lower-case letters, digits or '-', "
            "starting with a letter (it becomes part of S3 locations and stack names)"
        )
    return name


def _literal(value: str | int | float | bool) -> str | int | float | bool:
    if isinstance(value, str) and (not LITERAL_PATTERN.match(value) or ".." in value):
        raise ValueError(
            f"variable value {value!r} may hold only letters, digits and '_', '.', ':', '+', "
            "',', '-' (no '..', at most 200 characters): it is pasted into locations and SQL; "
            "pass anything else as a runtime parameter"
        )
    return value


def _inside_folder(value: str) -> str:
    if not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$", value) or ".." in value:
        raise ValueError(
            f"{value!r} must be a folder inside the project: a relative path of letters, "
            "digits, '_', '.', '-' and '/', without '..'"
        )
    return value


EnvName = Annotated[str, AfterValidator(_env_name)]
VariableName = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN, max_length=64)]
Literal_ = Annotated[str | int | float | bool, AfterValidator(_literal)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# ---------------------------------------------------------------- project


# `{{ env }}` in a resource name: the environment's name, so environments never share one.
ENV_PLACEHOLDER = re.compile(r"\{\{\s*env\s*\}\}")
WORKGROUP_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
PREFIX_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,38}$")


def with_env(text: str, env: str) -> str:
    return ENV_PLACEHOLDER.sub(env, text)


class Athena(Strict):
    workgroup: str = Field(description="Athena workgroup the queries run in ({{ env }} allowed).")
    results: str = Field(description="s3:// prefix for Athena query results ({{ env }} allowed).")
    bytes_scanned_cutoff: int = Field(
        10 * 1024**3, ge=10 * 1024**2, description="Per-query limit on bytes scanned."
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


# ---------------------------------------------------------------- tables


class Column(Strict):
    name: Identifier
    type: str = Field(description="Glue/Hive type: string, bigint, double, array<string>, ...")
    description: str | None = None

    @field_validator("type")
    @classmethod
    def _hive_type(cls, value: str) -> str:
        return hive_types.check(value)


class Csv(Strict):
    header: bool = Field(False, description="Whether the first line holds column names.")
    delimiter: str = Field(",", min_length=1, max_length=1)
    quote: str = Field('"', min_length=1, max_length=1)


class Sample(Strict):
    """Where a local bake gets this table's rows when the store has none (`bake --sample`,
    `bakery sample-data`); only local, never deployed."""

    file: str | None = Field(
        None,
        description="A small CSV (with a header row of the declared columns) or Parquet file, "
        "relative to the layer file.",
    )
    generator: str | None = Field(
        None,
        description="A generator registered by name in bakery/sample_data.py (GENERATORS).",
    )
    rows: int | None = Field(
        None, ge=1, description="How many rows (or items) the generator makes by default."
    )


# ---------------------------------------------------------------- steps


class StepBase(Strict):
    description: str | None = None


class GlueTable(StepBase):
    """Declare a Glue table: where its files live and what they hold."""

    type: Literal["glue_table"]
    name: StepName
    location: str = Field(
        description="s3:// prefix template, e.g. s3://{{ buckets.data }}/x/{{ env }}/t/"
    )
    format: Literal["csv", "parquet"]
    csv: Csv | None = None
    compression: Literal["snappy", "gzip", "zstd", "none"] = "snappy"
    columns: list[Column] = Field(min_length=1)
    partition_keys: list[Column] = Field(default_factory=list)
    sample: Sample | None = Field(
        None, description="Sample rows for local bakes: a file or a registered generator."
    )


class PurgePrefix(StepBase):
    """Empty the location of a table this layer writes."""

    type: Literal["purge_prefix"]
    id: StepName
    table: TableRef | None = Field(None, description="Purge this table's location.")
    prefix: str | None = Field(
        None, description="Or a prefix template; it must be a table location this layer writes."
    )


class AthenaQuery(StepBase):
    """A Jinja2 SELECT in Athena SQL, written `into` a table."""

    type: Literal["athena_query"]
    id: StepName
    query: str | None = Field(None, description="Template path, relative to the layer file.")
    sql: str | None = Field(None, description="Or the SELECT inline.")
    into: TableRef = Field(description="Table the result is written to (UNLOAD/COPY).")


class Points(Strict):
    table: TableRef
    x: Identifier = Field(description="Longitude column.")
    y: Identifier = Field(description="Latitude column.")


class Polygons(Strict):
    table: TableRef
    geometry: Identifier = Field(description="WKT column (lon/lat).")
    value: Identifier = Field(description="Column collected per point.")


class FanOut(Strict):
    column: Identifier = Field(description="Partition column of the points table.")
    values: list[str] = Field(min_length=1)
    max_concurrency: int = Field(26, ge=1, le=100)


class GeoJoin(StepBase):
    """Every point with the sorted distinct list of polygon values containing it."""

    type: Literal["geo_join"]
    id: StepName
    points: Points
    polygons: Polygons
    output_column: Identifier = Field(description="Array column of collected values.")
    into: TableRef
    fan_out: FanOut | None = None


class SameSet(Strict):
    kind: Literal["same_set"]
    left: TableRef
    right: TableRef
    column: Identifier


class OneDistinct(Strict):
    kind: Literal["one_distinct"]
    table: TableRef
    column: Identifier


class NoRows(Strict):
    kind: Literal["no_rows"]
    query: str | None = None
    sql: str | None = None


# Input guards: checked with the layer's other checks, before anything is published.
# A check kind is a model here (and its name in CHECK_KINDS), a built-in template
# bakery/templates/check_<kind>.sql that returns a row only when the check fails, a
# branch in plan._Builder.builtin_check and a wording in plan._check_description; both
# back-ends then run it like every other check, with the same message.
class MinRows(Strict):
    kind: Literal["min_rows"]
    table: TableRef
    min: int = Field(1, ge=1, description="Fewest rows the table may hold (1: not empty).")


class ValidGeometry(Strict):
    kind: Literal["valid_geometry"]
    table: TableRef
    column: Identifier = Field(description="WKT column; NULL and '' count as no geometry.")
    label: Identifier | None = Field(
        None, description="Column named in the message for the first invalid piece."
    )


class PublishGuard(Strict):
    """Compare the new table with the published one before publishing it."""

    kind: Literal["publish_guard"]
    table: TableRef = Field(description="A table this layer writes with a query.")
    key: Identifier = Field(description="Column that identifies a row in both versions.")
    column: Identifier = Field(description="Column whose value must not be lost.")
    max_emptied_percent: float = Field(
        ge=0,
        le=100,
        description=(
            "Fail when more than this percentage of the published rows would lose their "
            "value (it becomes NULL or empty, or the row disappears)."
        ),
    )


CheckKind = SameSet | OneDistinct | NoRows | MinRows | ValidGeometry | PublishGuard
CHECK_KINDS = (
    "same_set", "one_distinct", "no_rows", "min_rows", "valid_geometry", "publish_guard"
)  # fmt: skip


class Check(StepBase):
    """An assertion that stops the run with a message when it does not hold."""

    type: Literal["check"]
    id: StepName
    check: Annotated[CheckKind, Field(discriminator="kind")]


class Lambda(StepBase):
    """A handler in this repository (bakery/lambdas/<module>.py: handler)."""

    type: Literal["lambda"]
    id: StepName
    handler: str = Field(pattern=r"^bakery\.lambdas\.[a-z_][a-z0-9_]*\.handler$")
    reads: list[TableRef] = Field(default_factory=list)
    writes: list[TableRef] = Field(default_factory=list)
    ssm_parameters: dict[str, str] = Field(
        default_factory=dict, description="Environment variable -> SSM parameter name."
    )
    environment: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: int = Field(300, ge=1, le=900)
    memory_mb: int = Field(1024, ge=128, le=10240)
    ephemeral_storage_mb: int = Field(
        512, ge=512, le=10240, description="Size of the function's /tmp (Lambda's minimum 512)."
    )


class ExportByKey(StepBase):
    """One Parquet file per key value (e.g. per outcode)."""

    type: Literal["export_by_key"]
    id: StepName
    table: TableRef
    key: Identifier
    destination: str = Field(description="s3:// prefix template for the files.")
    columns: list[Identifier] = Field(
        min_length=1, description="Columns of each file, in order (defaults to the contract's)."
    )
    contract: list[Column] | None = Field(
        None,
        min_length=1,
        description=(
            "The product contract: the exact columns, order and types of every non-empty "
            "file, which readers rely on. Checked against the table at validate time and "
            "against baked files by the tests."
        ),
    )
    sort_by: list[Identifier] = Field(default_factory=list)
    unique_by: Identifier | None = Field(
        None, description="Identical duplicate rows are dropped; conflicting ones fail."
    )
    empty_unless_any: Identifier | None = Field(
        None,
        description="Write an empty file (no rows, no columns) when no row has a value here.",
    )
    delete_stale: bool = True

    @model_validator(mode="before")
    @classmethod
    def _columns_from_contract(cls, data: Any) -> Any:
        if (
            isinstance(data, dict)
            and "columns" not in data
            and isinstance(data.get("contract"), list)
        ):
            names = [c.get("name") if isinstance(c, dict) else None for c in data["contract"]]
            return {**data, "columns": names}
        return data

    @model_validator(mode="after")
    def _contract_is_the_columns(self) -> ExportByKey:
        if self.contract is not None and [c.name for c in self.contract] != self.columns:
            raise ValueError(
                "columns must list the contract's names in the same order "
                f"({', '.join(c.name for c in self.contract)}); or leave columns out"
            )
        return self


class ValuesSource(Strict):
    values: list[str] = Field(min_length=1)


class QuerySource(Strict):
    query: str | None = None
    sql: str | None = None


InnerStep = Annotated[AthenaQuery | Check | Lambda, Field(discriminator="type")]


class ForEach(StepBase):
    """Run steps once per value or per row of a query, at most max_concurrency at once."""

    type: Literal["for_each"]
    id: StepName
    over: ValuesSource | QuerySource
    as_: Identifier | None = Field(
        None, alias="as", description="Parameter name of each value (for `values`)."
    )
    max_concurrency: int = Field(5, ge=1, le=100)
    steps: list[InnerStep] = Field(min_length=1)


Step = Annotated[
    GlueTable | PurgePrefix | AthenaQuery | GeoJoin | Check | ForEach | Lambda | ExportByKey,
    Field(discriminator="type"),
]
STEP_TYPES = ("glue_table", "purge_prefix", "athena_query", "geo_join", "check", "for_each",
              "lambda", "export_by_key")  # fmt: skip


class Triggers(Strict):
    schedule: str | None = Field(
        None, description="EventBridge schedule: cron(0 1 * * ? *) or rate(1 day)."
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
    singleton: bool = Field(False, description="A second run while one runs stops at once.")
    timeout_minutes: int = Field(
        120, ge=1, le=60 * 24 * 7, description="The state machine's limit for one run."
    )
    steps: list[Step] = Field(min_length=1)
