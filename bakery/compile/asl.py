"""Step Functions definitions (Amazon States Language) compiled from a layer's plan.

Pure Python over the plan (no aws_cdk): the CDK layer stack deploys exactly the
dict built here, with `${...}` placeholders for the ARNs of the Lambda
functions, which CloudFormation fills in through DefinitionSubstitutions.
`bakery synth` writes the same dict to build/asl/<layer>.asl.json, so the file a
reviewer diffs is the definition that is deployed.

Shape of a layer's state machine, in spec order:

    start (Pass: wrap any input) -> [singleton check] -> step 1 -> step 2 ...
        -> publish -> [export_by_key steps] -> succeeded

Staged publish (bakery.compile.staging): every table the layer writes with a query is
built in its staging table (purged, UNLOADed or INSERTed into, repaired there) and read
from it by the layer's checks and later queries. Only after the last of them come the
publish states, one pair per staged table: the publish Lambda copies staging over live
and deletes what is stale, then MSCK REPAIR loads the live partitions. A run that fails
before publish leaves the live tables as they were.

Every Task retries transient service errors with jittered exponential backoff
and catches everything else into a Fail state named after the step. Athena runs
through the native `.sync` integration; runtime values (a fan-out value, a
column of a query row) travel as ExecutionParameters, never as SQL text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bakery.compile.staging import (
    rewrite_sql,
    staged_tables,
    staging_glue_name,
    staging_location,
)
from bakery.errors import BakeryError
from bakery.plan import LayerPlan, Plan, StepPlan, TablePlan

ATHENA_SYNC = "arn:aws:states:::athena:startQueryExecution.sync"
ATHENA_RESULTS = "arn:aws:states:::athena:getQueryResults"
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
S3_GET_OBJECT = "arn:aws:states:::s3:getObject"
S3_PUT_OBJECT = "arn:aws:states:::s3:putObject"
CATALOG = "AwsDataCatalog"
# Where Distributed Maps write their child executions' results (under the workgroup's
# result location, which the state machine role may already read and write).
MAP_RUNS = "bakery-map-runs"

# Error names, as Step Functions reports them for these integrations:
# - an Athena API error is "Athena." + the API's exception name (the `ServiceName.ErrorName`
#   rule of https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html;
#   e.g. Athena.InvalidRequestException from startQueryExecution.sync). Throttling is
#   TooManyRequestsException (the query quota, at submission) or, for the request-rate
#   limits the API does not model (ThrottlingException, "Rate exceeded"), the SDK's base
#   exception, Athena.AmazonAthenaException. That one is also what other unmodelled
#   request failures raise, so it is retried fewer times.
# - a query that runs and FAILS ends a .sync task with States.TaskFailed (cause: the query
#   execution): never retried, a bad query fails once
#   (https://docs.aws.amazon.com/step-functions/latest/dg/connect-athena.html).
ATHENA_TRANSIENT = [
    "Athena.TooManyRequestsException",
    "Athena.InternalServerException",
]
ATHENA_UNMODELLED = ["Athena.AmazonAthenaException"]
# Lambda's transient service errors, plus throttling (Lambda.TooManyRequestsException), as
# https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html lists
# them; a handler's own exception is reported under its class name and is not retried.
LAMBDA_TRANSIENT = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
]

# Fan-out values become S3 path segments (key=value/): keep them plain.
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.-]+$")
# Field of a fixed for_each item holding its values with quotes doubled (only when one has a quote).
_SQL_TEXT = "sql_text"


class CompileError(BakeryError):
    """The plan asks for something this back-end cannot express."""


def retry(errors: list[str], interval: int, attempts: int, max_delay: int) -> list[dict]:
    return [
        {
            "ErrorEquals": errors,
            "IntervalSeconds": interval,
            "MaxAttempts": attempts,
            "BackoffRate": 2,
            "MaxDelaySeconds": max_delay,
            "JitterStrategy": "FULL",
        }
    ]


# Reads and DDL (SELECT, MSCK REPAIR) are safe to run again whatever happened.
ATHENA_RETRY = retry(ATHENA_TRANSIENT, 5, 6, 120) + retry(ATHENA_UNMODELLED, 5, 3, 60)
# An UNLOAD retried as a whole with the emptying of its destination (see unload_states).
UNLOAD_RETRY = ATHENA_RETRY
# INSERT INTO appends: an attempt that may have run would add its rows twice, so only a
# refused submission (the query quota, TooManyRequestsException) is retried.
INSERT_RETRY = retry(["Athena.TooManyRequestsException"], 5, 6, 120)
LAMBDA_RETRY = retry(LAMBDA_TRANSIENT, 2, 6, 60)


def sql_literal(value: str) -> str:
    """A string as an Athena SQL literal, for ExecutionParameters (which take SQL literals)."""
    return "'" + value.replace("'", "''") + "'"


def _intrinsic_text(text: str) -> str:
    """Escape text for a string literal inside an intrinsic function."""
    return re.sub(r"([\\'{}])", r"\\\1", text)


def function_key(name: str) -> str:
    """DefinitionSubstitutions key of a Lambda function ARN."""
    return f"Function_{name}"


def unload_options(table: TablePlan, partitioned_by: list[str]) -> str:
    if table.format != "parquet":
        # UNLOAD's text output (TEXTFILE: no quoting, \N for NULL) is not what a csv table's
        # OpenCSVSerde reads back; `bakery validate` refuses such a layer first.
        raise CompileError(
            f"table {table.ref} is {table.format}: a query writes parquet tables only"
        )
    opts = ["format = 'PARQUET'"]
    if table.compression != "none":
        opts.append(f"compression = '{table.compression.upper()}'")
    if partitioned_by:
        opts.append(
            "partitioned_by = ARRAY[" + ", ".join(sql_literal(k) for k in partitioned_by) + "]"
        )
    return ", ".join(opts)


def unload(sql: str, table: TablePlan, location: str, partitioned_by: list[str]) -> str:
    options = unload_options(table, partitioned_by)
    return f"UNLOAD (\n{sql}\n)\nTO {sql_literal(location)}\nWITH ({options})"


@dataclass
class Compiled:
    definition: dict[str, Any]
    functions: list[str] = field(default_factory=list)  # names used via function_key()

    def to_json(self) -> str:
        return json.dumps(self.definition, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


class _LayerCompiler:
    def __init__(self, plan: Plan, layer: LayerPlan):
        self.plan = plan
        self.layer = layer
        self.states: dict[str, dict[str, Any]] = {}
        self.functions: list[str] = []
        # Tables built in staging, then published; queries read them from staging until then.
        self.staged: dict[str, TablePlan] = {t.ref: t for t in staged_tables(plan, layer)}
        self.publish_at = publish_index(layer)
        self.before_publish = True  # while compiling a step that runs before publish

    # -- staging -----------------------------------------------------------

    def staged_table(self, ref: str) -> TablePlan | None:
        """The table if it is staged and the current step runs before publish."""
        return self.staged.get(ref) if self.before_publish else None

    def sql(self, text: str | None) -> str | None:
        """A query as it runs here: before publish, staged tables are read from staging."""
        if text is None or not self.before_publish:
            return text
        return rewrite_sql(text, list(self.staged.values()))

    def write_target(self, ref: str) -> tuple[TablePlan, str, str]:
        """(table, location, glue name) a query step writes: the staging ones if staged."""
        table = self.plan.table(ref)
        if self.staged_table(ref) is None:
            return table, table.location, table.glue_name
        return table, staging_location(table), staging_glue_name(table)

    # -- small builders --------------------------------------------------

    def add(self, name: str, state: dict[str, Any]) -> str:
        if name in self.states:
            raise CompileError(f"layer {self.layer.name}: two states named {name!r}")
        _check_state_name(name)
        self.states[name] = state
        return name

    def function(self, name: str) -> str:
        if name not in self.functions:
            self.functions.append(name)
        return "${" + function_key(name) + "}"

    def fail_state(self, step: StepPlan) -> str:
        """The Fail state a step's Catch goes to; it names the step and carries the error."""
        name = f"{step.id} failed"
        state = {
            "Type": "Fail",
            "Comment": f"Step {step.qualified_id} failed.",
            "Error": f"{step.qualified_id} failed",
            "CausePath": (
                f"States.Format('step {_intrinsic_text(step.qualified_id)} failed: {{}}', "
                "States.JsonToString($.error))"
            ),
        }
        self.states.setdefault(name, state)
        return name

    def catch(self, step: StepPlan) -> list[dict]:
        return [
            {
                "ErrorEquals": ["States.ALL"],
                "ResultPath": "$.error",
                "Next": self.fail_state(step),
            }
        ]

    def params_path(self, params: list[str]) -> str | None:
        """ExecutionParameters for a for_each child: the item's SQL literal of each value.

        A Map item carries each value twice: raw under its name (what a Lambda child
        receives) and as an Athena SQL literal under `sql_text` (quoted, quotes doubled,
        NULL as NULL), made at synth for fixed values and by the row query for rows, since
        Step Functions has no intrinsic function that escapes a quote.
        """
        if not params:
            return None
        return "States.Array(" + ", ".join(f"$.{_SQL_TEXT}.{p}" for p in params) + ")"

    def athena_task(
        self,
        query: str | None,
        comment: str,
        next_: str | None,
        *,
        query_path: str | None = None,
        params_path: str | None = None,
        result_path: str | None = None,
        retry_: list[dict] | None = ATHENA_RETRY,
    ) -> dict[str, Any]:
        parameters: dict[str, Any] = {
            "QueryExecutionContext": {
                "Catalog": CATALOG,
                "Database": self.plan.project.glue_database,
            },
            "WorkGroup": self.plan.project.athena.workgroup,
        }
        if query_path:
            parameters["QueryString.$"] = query_path
        else:
            parameters["QueryString"] = query
        if params_path:
            parameters["ExecutionParameters.$"] = params_path
        state: dict[str, Any] = {
            "Type": "Task",
            "Comment": comment,
            "Resource": ATHENA_SYNC,
            "Parameters": parameters,
        }
        if retry_:
            state["Retry"] = retry_
        if result_path:
            state["ResultSelector"] = {"id.$": "$.QueryExecution.QueryExecutionId"}
            state["ResultPath"] = result_path
        else:
            state["ResultPath"] = None
        _link(state, next_)
        return state

    def results_task(self, id_path: str, max_results: int, result_path: str, next_: str) -> dict:
        return {
            "Type": "Task",
            "Comment": "Fetch the query's rows (the first row is the header).",
            "Resource": ATHENA_RESULTS,
            "Parameters": {"QueryExecutionId.$": id_path, "MaxResults": max_results},
            "ResultSelector": {"rows.$": "$.ResultSet.Rows"},
            "ResultPath": result_path,
            "Retry": ATHENA_RETRY,
            "Next": next_,
        }

    def lambda_task(
        self, function: str, payload: dict[str, Any], comment: str, next_: str | None, **extra: Any
    ) -> dict[str, Any]:
        state: dict[str, Any] = {
            "Type": "Task",
            "Comment": comment,
            "Resource": LAMBDA_INVOKE,
            "Parameters": {"FunctionName": self.function(function), "Payload": payload},
            "Retry": LAMBDA_RETRY,
            "ResultPath": None,
        }
        state.update(extra)
        _link(state, next_)
        return state

    # -- the layer ---------------------------------------------------------

    def compile(self) -> Compiled:
        next_ = self.add("succeeded", {"Type": "Succeed", "Comment": "Every step ran."})
        steps = self.layer.steps
        for i in reversed(range(len(steps))):
            if i + 1 == self.publish_at:
                next_ = self.publish(next_)
            self.before_publish = i < self.publish_at
            if not self.before_publish:
                self.refuse_staged_write(steps[i])
            next_ = self.step(steps[i], next_)
        if self.publish_at == 0:
            next_ = self.publish(next_)
        self.before_publish = True
        if self.layer.singleton:
            next_ = self.singleton(next_)
        start = self.add(
            "start",
            {
                "Type": "Pass",
                "Comment": "Keep the trigger's input (any JSON) under $.input; steps add fields.",
                "Parameters": {"input.$": "$"},
                "Next": next_,
            },
        )
        _check_nested_state_names(self.states)
        definition = {
            "Comment": (
                f"bakery layer {self.layer.name} ({self.plan.env}): {self.layer.description}"
            ),
            "StartAt": start,
            "States": self.states,
            "TimeoutSeconds": self.layer.spec.timeout_minutes * 60,
        }
        return Compiled(definition, self.functions)

    def refuse_staged_write(self, step: StepPlan) -> None:
        for sub in [step, *step.children]:
            if sub.kind != "export_by_key" and set(sub.writes) & set(self.staged):
                raise CompileError(
                    f"step {sub.qualified_id} writes a staged table after the layer publishes "
                    "(before its first export_by_key): move it before the exports"
                )

    def publish(self, next_: str) -> str:
        """Per staged table: copy staging over live (publish Lambda), then load partitions."""
        if not self.staged:
            return next_
        failed = self.add(
            "publishing failed",
            {
                "Type": "Fail",
                "Comment": "A table could not be published; tables published before it are new.",
                "Error": f"{self.layer.name}.publish failed",
                "CausePath": ("States.Format('publish failed: {}', States.JsonToString($.error))"),
            },
        )
        catch = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": failed}]
        for table in reversed(list(self.staged.values())):
            if table.partition_keys:
                state = self.athena_task(
                    f"MSCK REPAIR TABLE {table.glue_name}",
                    f"Load the partitions of the published {table.name} into Glue.",
                    next_,
                )
                state["Catch"] = catch
                next_ = self.add(f"repair {table.name}", state)
            next_ = self.add(
                f"publish {table.name}",
                self.lambda_task(
                    "publish",
                    {
                        "staging_location": staging_location(table),
                        "live_location": table.location,
                    },
                    f"Publish {table.ref}: copy staging over live, delete stale live files, "
                    "clear staging.",
                    next_,
                    Catch=catch,
                ),
            )
        return next_

    def singleton(self, next_: str) -> str:
        verdict = self.add(
            "already running?",
            {
                "Type": "Choice",
                "Comment": (
                    "A singleton layer stops at once when an older execution runs; the "
                    "oldest proceeds, so two runs started together never both stop."
                ),
                "Choices": [
                    {
                        "Variable": "$.singleton.older[0]",
                        "IsPresent": True,
                        "Next": "already running",
                    }
                ],
                "Default": next_,
            },
        )
        self.add(
            "already running",
            {
                "Type": "Fail",
                "Error": "AlreadyRunning",
                "CausePath": (
                    f"States.Format('layer {self.layer.name} is singleton and an older execution "
                    "is running: {}', States.JsonToString($.singleton.older))"
                ),
            },
        )
        return self.add(
            "singleton check",
            self.lambda_task(
                "singleton",
                {
                    "state_machine_arn.$": "$$.StateMachine.Id",
                    "execution_arn.$": "$$.Execution.Id",
                    "start_time.$": "$$.Execution.StartTime",
                },
                "List the RUNNING executions of this state machine older than this one.",
                verdict,
                ResultSelector={"older.$": "$.Payload.older"},
                ResultPath="$.singleton",
                Catch=[
                    {
                        "ErrorEquals": ["States.ALL"],
                        "ResultPath": "$.error",
                        "Next": self.add(
                            "singleton check failed",
                            {
                                "Type": "Fail",
                                "Error": f"{self.layer.name}.singleton_check failed",
                                "CausePath": (
                                    "States.Format('could not list running executions: {}', "
                                    "States.JsonToString($.error))"
                                ),
                            },
                        ),
                    }
                ],
            ),
        )

    def step(self, step: StepPlan, next_: str) -> str:
        builder = STATE_BUILDERS.get(step.kind)
        if builder is None:
            raise CompileError(f"step {step.qualified_id}: no AWS compiler for kind {step.kind!r}")
        return builder(self, step, next_)

    def describe(self, step: StepPlan, default: str) -> str:
        return step.description or default

    # -- one method per step kind -----------------------------------------

    def step_purge_prefix(self, step: StepPlan, next_: str) -> str:
        location = step.location
        staged = [self.staged_table(ref) for ref in step.writes]
        if staged and staged[0] is not None:
            location = staging_location(staged[0])  # the live table stays until publish
        state = self.lambda_task(
            "purge",
            {"location": location},
            self.describe(step, f"Empty {location}"),
            next_,
            Catch=self.catch(step),
        )
        return self.add(step.id, state)

    def step_refresh_partitions(self, step: StepPlan, next_: str) -> str:
        sql = step.sql
        table = self.staged_table(step.writes[0]) if step.writes else None
        if table is not None:
            sql = f"MSCK REPAIR TABLE {staging_glue_name(table)}"
        state = self.athena_task(sql, self.describe(step, "Load partitions."), next_)
        state["Catch"] = self.catch(step)
        return self.add(step.id, state)

    def unload_states(
        self,
        name: str,
        empty: str,
        unload_name: str,
        comment: str,
        next_: str | None,
        *,
        query: str | None = None,
        query_path: str | None = None,
        location: str | None = None,
        location_path: str | None = None,
        params_path: str | None = None,
    ) -> dict[str, Any]:
        """A Parallel of one branch, empty the destination -> UNLOAD, retried as a whole.

        UNLOAD refuses a destination that holds a file, and an attempt that failed after
        it started may have written some: a retry of the UNLOAD alone would fail on its
        own leftovers. The Parallel's Retry runs the branch again from the emptying.
        """
        payload = {"location.$": location_path} if location_path else {"location": location}
        purge = self.lambda_task(
            "purge",
            payload,
            "Empty the destination (UNLOAD needs an empty one; a retry finds the last "
            "attempt's files).",
            unload_name,
        )
        athena = self.athena_task(
            query,
            comment,
            None,
            query_path=query_path,
            params_path=params_path,
            retry_=None,  # the Parallel retries, from the emptying
        )
        state: dict[str, Any] = {
            "Type": "Parallel",
            "Comment": comment,
            "Branches": [{"StartAt": empty, "States": {empty: purge, unload_name: athena}}],
            "ResultPath": None,
            "Retry": UNLOAD_RETRY,
        }
        _link(state, next_)
        return state

    def step_athena_query(self, step: StepPlan, next_: str) -> str:
        table, location, _ = self.write_target(step.writes[0])
        keys = [k.name for k in table.partition_keys]
        query = unload(self.sql(step.sql) or "", table, location, keys)
        state = self.unload_states(
            step.id,
            f"{step.id} empty destination",
            f"{step.id} unload",
            self.describe(step, f"Write {table.ref}."),
            next_,
            query=query,
            location=location,
        )
        state["Catch"] = self.catch(step)
        return self.add(step.id, state)

    def step_geo_join(self, step: StepPlan, next_: str) -> str:
        if not step.over_values:
            return self.step_athena_query(step, next_)
        # Fanned out: one UNLOAD per value into <location><column>=<value>/, selecting every
        # column but the fan-out one (its value is the folder), so the queries run side by side
        # without sharing a destination (UNLOAD refuses a non-empty one).
        column = step.over_params[0]
        table, table_location, _ = self.write_target(step.writes[0])
        keys = [k.name for k in table.partition_keys]
        if column not in keys:
            raise CompileError(
                f"step {step.qualified_id}: fan_out column {column!r} must also be a partition "
                f"key of {table.ref} to write one folder per value"
            )
        rest = [k for k in keys if k != column]
        selected = ", ".join([c.name for c in table.columns] + rest)
        inner = f"SELECT {selected}\nFROM (\n{self.sql(step.sql)}\n) AS fanned_out"
        items = []
        for value in step.over_values:
            if not _SAFE_VALUE.match(value):
                raise CompileError(
                    f"step {step.qualified_id}: fan-out value {value!r} is not a plain path segment"
                )
            location = f"{table_location}{column}={value}/"
            items.append(
                {
                    "location": location,
                    "params": [sql_literal(value)],
                    "query": unload(inner, table, location, rest),
                    "value": value,
                }
            )
        body_start = f"{step.id} unload one value"
        body = {
            body_start: self.unload_states(
                body_start,
                f"{step.id} empty value folder",
                f"{step.id} unload value",
                f"UNLOAD the rows where {column} = the item's value into its own folder.",
                None,
                query_path="$.query",
                location_path="$.location",
                params_path="$.params",
            )
        }
        return self._fixed_map(step, next_, items, body_start, body)

    def _fixed_map(
        self,
        step: StepPlan,
        next_: str,
        items: list[dict],
        body_start: str,
        body: dict[str, dict],
        result_path: str | None = None,
        concurrency: int | None = None,
    ) -> str:
        """Pass (the items, fixed at synth) -> Map with a concurrency limit -> next_."""
        map_name = step.id
        items_name = self.add(
            f"{step.id} items",
            {
                "Type": "Pass",
                "Comment": f"The {len(items)} items {step.id} maps over.",
                "Result": items,
                "ResultPath": "$.items",
                "Next": map_name,
            },
        )
        # No ItemSelector: each iteration's input is its item.
        self.add(
            map_name,
            self._map_state(
                step,
                f"{step.id}, one iteration per item.",
                "$.items",
                concurrency or step.max_concurrency or 1,
                body_start,
                body,
                result_path,
                next_,
            ),
        )
        return items_name

    def _map_state(
        self,
        step: StepPlan,
        comment: str,
        items_path: str | None,
        concurrency: int,
        body_start: str,
        body: dict[str, dict],
        result_path: str | None,
        next_: str,
        selector: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        state: dict[str, Any] = {
            "Type": "Map",
            "Comment": self.describe(step, comment),
        }
        if items_path is not None:
            state["ItemsPath"] = items_path
        if selector is not None:
            state["ItemSelector"] = selector
        state.update(
            {
                "MaxConcurrency": concurrency,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": body_start,
                    "States": body,
                },
                "ResultPath": result_path,
                "Catch": self.catch(step),
                "Next": next_,
            }
        )
        return state

    def step_check(self, step: StepPlan, next_: str) -> str:
        states, start = self._check_states(step, next_, inside=False)
        for name, state in states.items():
            self.add(name, state)
        return start

    def _check_states(
        self, step: StepPlan, next_: str | None, *, inside: bool
    ) -> tuple[dict[str, dict], str]:
        """query -> GetQueryResults -> Choice -> Fail (rows mean the check failed).

        The Fail state's cause is the local engine's message (bakery.engine.steps.
        check_message): `check <layer>.<id> failed: <description>: col=value, ...` for the
        first row, NULL shown as None. The row is made into that text by the query itself
        (check_row_text), so no JSONPath reads a cell that a NULL would leave empty.
        """
        what = (step.description or "the query returns no rows").rstrip(".")
        columns = check_columns(step.sql or "")
        q, r, v, f = (
            f"{step.id}",
            f"{step.id} results",
            f"{step.id} passed?",
            f"{step.id} did not hold",
        )
        states: dict[str, dict] = {}
        sql = self.sql(step.sql) or ""
        query = self.athena_task(
            # a message-column check's query already returns the whole message, never NULL
            check_row_text(sql, columns) if columns and not step.message_column else sql,
            f"Check: {what}",
            r,
            params_path=self.params_path(step.params),
            result_path="$.check",
        )
        if not inside:
            query["Catch"] = self.catch(step)
        states[q] = query
        results = self.results_task("$.check.id", 2, "$.check", v)
        if not inside:
            results["Catch"] = self.catch(step)
        states[r] = results
        verdict: dict[str, Any] = {
            "Type": "Choice",
            "Comment": "The check query returns rows only when the check fails.",
            "Choices": [{"Variable": "$.check.rows[1]", "IsPresent": True, "Next": f}],
        }
        if next_ is None:
            states[f"{step.id} held"] = {"Type": "Succeed"}
            verdict["Default"] = f"{step.id} held"
        else:
            verdict["Default"] = next_
        states[v] = verdict
        prefix = f"check {step.qualified_id} failed: {step.description}: "
        if columns:
            cause = (
                f"States.Format('{_intrinsic_text(prefix)}{{}}', "
                "$.check.rows[1].Data[0].VarCharValue)"
            )
        else:  # columns not known at synth (SELECT *): the row as JSON
            cause = (
                f"States.Format('{_intrinsic_text(prefix)}{{}} = {{}}', "
                "States.JsonToString($.check.rows[0].Data), "
                "States.JsonToString($.check.rows[1].Data))"
            )
        if step.message_column:
            # The query wrote the whole message: the local engine reports the same text.
            cause = (
                f"States.Format('check {_intrinsic_text(step.qualified_id)} failed: {{}}', "
                "$.check.rows[1].Data[0].VarCharValue)"
            )
        states[f] = {
            "Type": "Fail",
            "Error": f"{step.qualified_id} failed",
            "CausePath": cause,
        }
        return states, q

    def step_lambda(self, step: StepPlan, next_: str) -> str:
        state = self._lambda_step_state(step, next_)
        state["Catch"] = self.catch(step)
        return self.add(step.id, state)

    def _lambda_step_state(self, step: StepPlan, next_: str | None) -> dict[str, Any]:
        # The table a Lambda step writes reaches it once: the TABLE_LOCATION environment variable.
        payload: dict[str, Any] = {"execution_id.$": "$$.Execution.Id", "step": step.qualified_id}
        for name in step.params or []:
            payload[f"{name}.$"] = f"$.{name}"
        return self.lambda_task(
            step.id, payload, self.describe(step, f"Run {step.spec.handler}."), next_
        )

    def step_export_by_key(self, step: StepPlan, next_: str) -> str:
        spec = step.spec
        table = self.plan.table(step.reads[0])
        keys = [k.name for k in table.partition_keys]
        delete = next_
        if spec.delete_stale:
            delete = self.add(
                f"{step.id} delete stale",
                self.lambda_task(
                    f"{step.id}_delete_stale",
                    {"destination": step.location, "results.$": "$.exported"},
                    "Delete the files whose key no longer exists.",
                    next_,
                    Catch=self.catch(step),
                ),
            )
        payload = {
            "table_location": table.location,
            "partition.$": "$.partition",
            "destination": step.location,
            "key": spec.key,
            "columns": list(spec.columns),
            "sort_by": list(spec.sort_by),
            "unique_by": spec.unique_by,
            "empty_unless_any": spec.empty_unless_any,
        }
        body = {
            f"{step.id} export partition": self.lambda_task(
                f"{step.id}_export",
                payload,
                "Write one file per key value of this partition.",
                None,
                ResultSelector={"keys.$": "$.Payload.keys"},
                ResultPath="$",
            )
        }
        values = partition_values(self.plan, table)
        if not keys:
            items = [{"partition": None}]
        elif values is not None:
            items = [{"partition": {keys[0]: v}} for v in values]
        else:
            # Partition values not known at synth: list them from the table's $partitions.
            columns = ", ".join(f'"{k}"' for k in keys)
            sql = (
                f'SELECT DISTINCT {columns} FROM "{table.glue_database}"."{table.name}$partitions"'
            )
            selector = {"partition": row_selector(keys, sql_text=False)}
            return self._rows_map(
                step,
                delete,
                sql,
                keys,
                selector,
                f"{step.id} export partition",
                body,
                "$.exported",
                10,
            )
        return self._fixed_map(
            step,
            delete,
            items,
            f"{step.id} export partition",
            body,
            "$.exported",
            min(len(items), 10),
        )

    def _rows_map(
        self,
        step: StepPlan,
        next_: str,
        sql: str,
        names: list[str],
        selector: dict[str, Any],
        body_start: str,
        body: dict[str, dict],
        result_path: str | None,
        concurrency: int,
    ) -> str:
        """The row query -> a Distributed Map reading its result file, one child per row.

        The items never pass through the state: Step Functions reads them from the CSV
        Athena writes for the query (`<workgroup results>/<QueryExecutionId>.csv`, header
        first), so neither GetQueryResults' 1000-row pages nor the 256 KiB state limit
        bound the count. The query is wrapped so that every column the Map uses is text
        that is never NULL: `<p>_sql`, the value as an Athena SQL literal (quoted, quotes
        doubled, NULL as NULL), and `<p>_json`, a one-element JSON array holding the value
        (null for NULL), which ItemSelector unwraps into the raw value.
        """
        q, m = f"{step.id} rows query", step.id
        query = self.athena_task(
            rows_query(sql, names),
            "The rows to map over (each value as SQL literal text and as JSON).",
            m,
            result_path="$.rows",
        )
        query["Catch"] = self.catch(step)
        self.add(q, query)
        bucket, prefix = _split_s3(self.plan.project.athena.results)
        state = self._map_state(
            step,
            f"{step.id}, one child execution per row.",
            None,
            concurrency,
            body_start,
            body,
            result_path,
            next_,
            selector=selector,
        )
        state["ItemReader"] = {
            "Resource": S3_GET_OBJECT,
            "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
            "Parameters": {
                "Bucket": bucket,
                "Key.$": f"States.Format('{_intrinsic_text(prefix)}{{}}.csv', $.rows.id)",
            },
        }
        state["ItemProcessor"]["ProcessorConfig"] = {
            "Mode": "DISTRIBUTED",
            "ExecutionType": "STANDARD",
        }
        if result_path is None:
            # Results go to S3, not into the state: many children's outputs would pass
            # the state's 256 KiB even when each is small.
            state["ResultWriter"] = {
                "Resource": S3_PUT_OBJECT,
                "Parameters": {
                    "Bucket": bucket,
                    "Prefix": f"{prefix}{MAP_RUNS}/{self.layer.name}/{step.id}",
                },
            }
        self.add(m, state)
        return q

    def step_for_each(self, step: StepPlan, next_: str) -> str:
        # Map items carry raw values (a Lambda child gets them as they are, as the local
        # engine passes them) and their SQL literals (for Athena children's parameters).
        body: dict[str, dict] = {}
        child_next: str | None = None
        start = None
        for child in reversed(step.children):
            start = self._inner(child, child_next, body)
            child_next = start
        assert start is not None
        concurrency = step.max_concurrency or 1
        if step.over_values is not None:
            name = step.over_params[0]
            items = [{name: v, _SQL_TEXT: {name: sql_literal(v)}} for v in step.over_values]
            return self._fixed_map(step, next_, items, start, body)
        selector = row_selector(step.over_params)
        return self._rows_map(
            step,
            next_,
            self.sql(step.over_sql) or "",
            step.over_params,
            selector,
            start,
            body,
            None,
            concurrency,
        )

    def _inner(self, child: StepPlan, next_: str | None, body: dict[str, dict]) -> str:
        """A step inside for_each: its parameters are fields of the Map item."""
        builder = INNER_STATE_BUILDERS.get(child.kind)
        if builder is None:
            raise CompileError(
                f"step {child.qualified_id}: {child.kind} is not supported in for_each"
            )
        return builder(self, child, next_, body)

    def inner_athena_query(self, child: StepPlan, next_: str | None, body: dict[str, dict]) -> str:
        # Iterations run side by side: INSERT INTO appends files (and partitions) safely,
        # where UNLOAD would need one empty destination per iteration.
        table, _, glue_name = self.write_target(child.writes[0])
        query = f"INSERT INTO {glue_name}\n{self.sql(child.sql)}"
        body[child.id] = self.athena_task(
            query,
            self.describe(child, f"Append to {table.ref}."),
            next_,
            params_path=self.params_path(child.params),
            retry_=INSERT_RETRY,
        )
        return child.id

    def inner_check(self, child: StepPlan, next_: str | None, body: dict[str, dict]) -> str:
        states, start = self._check_states(child, next_, inside=True)
        body.update(states)
        return start

    def inner_lambda(self, child: StepPlan, next_: str | None, body: dict[str, dict]) -> str:
        body[child.id] = self._lambda_step_state(child, next_)
        return child.id


# The ASL back-end's tables, one entry per kind (tests/spec/test_kinds.py checks they
# cover every registered kind): the states of a top-level step, returning the first
# state's name...
STATE_BUILDERS: dict[str, Callable[[_LayerCompiler, StepPlan, str], str]] = {
    "purge_prefix": _LayerCompiler.step_purge_prefix,
    "athena_query": _LayerCompiler.step_athena_query,
    "geo_join": _LayerCompiler.step_geo_join,
    "check": _LayerCompiler.step_check,
    "for_each": _LayerCompiler.step_for_each,
    "lambda": _LayerCompiler.step_lambda,
    "export_by_key": _LayerCompiler.step_export_by_key,
    "refresh_partitions": _LayerCompiler.step_refresh_partitions,
}
# ...and the states of a step inside a for_each body (the kinds allowed there), added
# to the Map's body.
INNER_STATE_BUILDERS: dict[
    str, Callable[[_LayerCompiler, StepPlan, str | None, dict[str, dict]], str]
] = {
    "athena_query": _LayerCompiler.inner_athena_query,
    "check": _LayerCompiler.inner_check,
    "lambda": _LayerCompiler.inner_lambda,
}


def rows_query(sql: str, names: list[str]) -> str:
    """`sql` wrapped so that each of its columns (by position, named `names`) becomes two
    never-NULL text columns: `<name>_sql`, an Athena SQL literal of the value (NULL for
    NULL), and `<name>_json`, the value in a one-element JSON array ([null] for NULL).
    The array keeps a text value a JSON string in Athena and in DuckDB alike (a bare
    CAST(text AS JSON) parses the text in DuckDB)."""
    columns = [f"v{i}" for i in range(len(names))]
    out = []
    for name, col in zip(names, columns, strict=True):
        out.append(
            f"CASE WHEN {col} IS NULL THEN 'NULL' "
            f"ELSE '''' || replace(CAST({col} AS varchar), '''', '''''') || '''' END "
            f'AS "{name}_sql"'
        )
        out.append(f'json_format(CAST(ARRAY[{col}] AS JSON)) AS "{name}_json"')
    return (
        "SELECT\n    "
        + ",\n    ".join(out)
        + f"\nFROM (\n{sql}\n) AS bakery_rows ({', '.join(columns)})"
    )


def check_columns(sql: str) -> list[str]:
    """The output column names of a check query, or [] when they are not known at synth."""
    import sqlglot

    try:
        names = sqlglot.parse_one(sql, read="athena").named_selects
    except sqlglot.errors.ParseError:
        return []
    return [] if not names or any(n in ("", "*") for n in names) else list(names)


def check_row_text(sql: str, columns: list[str]) -> str:
    """`sql` giving its first row as one never-NULL text, `c1=v1, c2=v2` (NULL as None),
    as the local engine words a failed check."""
    cols = [f"c{i}" for i in range(len(columns))]
    parts = []
    for i, (name, col) in enumerate(zip(columns, cols, strict=True)):
        label = ("" if i == 0 else ", ") + f"{name}="
        parts.append(f"{sql_literal(label)} || coalesce(CAST({col} AS varchar), 'None')")
    return (
        f"SELECT {' || '.join(parts)} AS failed_row\n"
        f"FROM (\n{sql}\n) AS bakery_check ({', '.join(cols)})\nLIMIT 1"
    )


def row_selector(names: list[str], *, sql_text: bool = True) -> dict[str, Any]:
    """A Distributed Map's ItemSelector over rows_query's columns: each raw value (unwrapped
    from its JSON array) under its name, and its SQL literal under `sql_text`."""
    item: dict[str, Any] = {
        f"{n}.$": f"States.ArrayGetItem(States.StringToJson($$.Map.Item.Value.{n}_json), 0)"
        for n in names
    }
    if sql_text:
        item[_SQL_TEXT] = {f"{n}.$": f"$$.Map.Item.Value.{n}_sql" for n in names}
    return item


def _split_s3(uri: str) -> tuple[str, str]:
    """(bucket, prefix ending with '/' or empty) of an s3:// location."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    prefix = prefix.rstrip("/")
    return bucket, prefix + "/" if prefix else ""


# Step Functions refuses longer state names. With step ids and table names of at most
# 60 characters (the spec's limit), the longest generated name is 79: `<id> empty value folder`.
MAX_STATE_NAME = 80


def _check_state_name(name: str) -> None:
    if len(name) > MAX_STATE_NAME:
        raise CompileError(f"state name {name!r} is longer than {MAX_STATE_NAME} characters")


def _check_nested_state_names(states: dict[str, dict[str, Any]]) -> None:
    """The states inside Map bodies, which are built without add()."""
    for state in states.values():
        processor = state.get("ItemProcessor")
        if processor:
            for name in processor["States"]:
                _check_state_name(name)
            _check_nested_state_names(processor["States"])


def _link(state: dict[str, Any], next_: str | None) -> None:
    if next_ is None:
        state["End"] = True
    else:
        state["Next"] = next_


def publish_index(layer: LayerPlan) -> int:
    """Where the publish states go among the layer's top-level steps: before the first
    export_by_key (which reads the live table), else after the last step."""
    for i, step in enumerate(layer.steps):
        if step.kind == "export_by_key":
            return i
    return len(layer.steps)


def partition_values(plan: Plan, table: TablePlan) -> list[str] | None:
    """Partition values known at synth: the fan-out values of the step that writes the table."""
    if len(table.partition_keys) != 1:
        return None
    layer = plan.layer(table.layer)
    for step in layer.walk():
        if (
            table.ref in step.writes
            and step.kind == "geo_join"
            and step.over_values
            and step.over_params == [table.partition_keys[0].name]
        ):
            return list(step.over_values)
    return None


def compile_layer(plan: Plan, layer: LayerPlan) -> Compiled:
    """The state machine definition of one layer."""
    return _LayerCompiler(plan, layer).compile()


def layer_asl_json(plan: Plan, layer: LayerPlan) -> str:
    """The text of build/asl/<layer>.asl.json, as `bakery synth` writes it (no CDK values)."""
    return compile_layer(plan, layer).to_json()
