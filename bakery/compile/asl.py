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
from dataclasses import dataclass, field
from typing import Any

from bakery.compile.staging import (
    rewrite_sql,
    staged_tables,
    staging_glue_name,
    staging_location,
)
from bakery.plan import LayerPlan, Plan, StepPlan, TablePlan

ATHENA_SYNC = "arn:aws:states:::athena:startQueryExecution.sync"
ATHENA_RESULTS = "arn:aws:states:::athena:getQueryResults"
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
CATALOG = "AwsDataCatalog"
# GetQueryResults returns at most 1000 rows a page, the first being the header.
MAX_ROWS = 999

# Throttling and service-side errors only: Athena.AmazonAthenaException is the SDK's base
# exception (a bad request too), so retrying it would rerun requests that cannot succeed.
ATHENA_TRANSIENT = [
    "Athena.TooManyRequestsException",
    "Athena.InternalServerException",
]
# The set Step Functions recommends for lambda:invoke (service, SDK and throttling errors).
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


class CompileError(Exception):
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


ATHENA_RETRY = retry(ATHENA_TRANSIENT, 5, 6, 120)
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
    if table.format == "parquet":
        opts = ["format = 'PARQUET'"]
        if table.compression != "none":
            opts.append(f"compression = '{table.compression.upper()}'")
    else:
        if table.csv is not None and table.csv.header:
            raise CompileError(
                f"table {table.ref} is csv with a header line, which UNLOAD cannot write; "
                "write it as parquet or csv without header"
            )
        delimiter = table.csv.delimiter if table.csv else ","
        opts = ["format = 'TEXTFILE'", f"field_delimiter = {sql_literal(delimiter)}"]
        if table.compression in ("gzip", "zstd"):
            opts.append(f"compression = '{table.compression.upper()}'")
        elif table.compression == "none":
            opts.append("compression = 'NONE'")
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
        # Inside a for_each: the JSONPath of each parameter's quote-safe text (default $.<name>).
        self.literal_paths: dict[str, str] = {}
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
        """ExecutionParameters for a for_each child: each raw item value as a quoted SQL literal.

        The Map items carry raw values (what a Lambda child receives); the quotes are
        added only here, where Athena needs SQL literals.
        """
        if not params:
            return None
        literals = [
            f"States.Format('\\'{{}}\\'', {self.literal_paths.get(p, '$.' + p)})" for p in params
        ]
        return "States.Array(" + ", ".join(literals) + ")"

    def athena_task(
        self,
        query: str | None,
        comment: str,
        next_: str | None,
        *,
        query_path: str | None = None,
        params_path: str | None = None,
        result_path: str | None = None,
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
            "Retry": ATHENA_RETRY,
        }
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
        builder = getattr(self, f"step_{step.kind}", None)
        if builder is None:
            raise CompileError(f"step {step.qualified_id}: no AWS compiler for kind {step.kind!r}")
        return builder(step, next_)

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

    def step_athena_query(self, step: StepPlan, next_: str) -> str:
        table, location, _ = self.write_target(step.writes[0])
        keys = [k.name for k in table.partition_keys]
        query = unload(self.sql(step.sql) or "", table, location, keys)
        state = self.athena_task(query, self.describe(step, f"Write {table.ref}."), next_)
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
                    "params": [sql_literal(value)],
                    "query": unload(inner, table, location, rest),
                    "value": value,
                }
            )
        body_start = f"{step.id} unload one value"
        body = {
            body_start: self.athena_task(
                None,
                f"UNLOAD the rows where {column} = the item's value into its own folder.",
                None,
                query_path="$.query",
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
        items_path: str,
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
            "ItemsPath": items_path,
        }
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
        """query -> GetQueryResults -> Choice -> Fail (rows mean the check failed)."""
        what = (step.description or "the query returns no rows").rstrip(".")
        q, r, v, f = (
            f"{step.id}",
            f"{step.id} results",
            f"{step.id} passed?",
            f"{step.id} did not hold",
        )
        states: dict[str, dict] = {}
        query = self.athena_task(
            self.sql(step.sql),
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
        states[f] = {
            "Type": "Fail",
            "Error": f"{step.qualified_id} failed",
            "CausePath": (
                f"States.Format('check {_intrinsic_text(step.qualified_id)} failed: "
                f"{_intrinsic_text(what)}. The query returned {{}} = {{}}', "
                "States.JsonToString($.check.rows[0].Data), "
                "States.JsonToString($.check.rows[1].Data))"
            ),
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
            selector = {
                "partition": {
                    f"{k}.$": f"$$.Map.Item.Value.Data[{i}].VarCharValue"
                    for i, k in enumerate(keys)
                }
            }
            return self._rows_map(
                step, delete, sql, selector, f"{step.id} export partition", body, "$.exported", 10
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
        selector: dict[str, Any],
        body_start: str,
        body: dict[str, dict],
        result_path: str | None,
        concurrency: int,
    ) -> str:
        """query -> GetQueryResults -> too many? -> drop header -> Map over the rows.

        One page holds at most MAX_ROWS + 1 rows, the header included, so a page
        without NextToken holds every row. With a NextToken (a full page), one more
        row is asked for: only if it exists are there more than MAX_ROWS data rows.
        The page is kept whole (a JSONPath to an absent NextToken would fail).
        """
        q, r, n, more, more_ok, h, m = (
            f"{step.id} rows query",
            f"{step.id} rows",
            f"{step.id} row count ok?",
            f"{step.id} more rows",
            f"{step.id} more rows?",
            f"{step.id} drop header",
            step.id,
        )
        too_many = f"{step.id} too many rows"
        query = self.athena_task(sql, "The rows to map over.", r, result_path="$.rows")
        query["Catch"] = self.catch(step)
        self.add(q, query)
        results = self.results_task("$.rows.id", MAX_ROWS + 1, "$.page", n)
        del results["ResultSelector"]
        results["Catch"] = self.catch(step)
        self.add(r, results)
        self.add(
            n,
            {
                "Type": "Choice",
                "Comment": "No NextToken: this page holds every row.",
                "Choices": [{"Variable": "$.page.NextToken", "IsPresent": True, "Next": more}],
                "Default": h,
            },
        )
        self.add(
            more,
            {
                "Type": "Task",
                "Comment": f"A full page: is there a row after the first {MAX_ROWS}?",
                "Resource": ATHENA_RESULTS,
                "Parameters": {
                    "QueryExecutionId.$": "$.rows.id",
                    "NextToken.$": "$.page.NextToken",
                    "MaxResults": 1,
                },
                "ResultSelector": {"rows.$": "$.ResultSet.Rows"},
                "ResultPath": "$.more",
                "Retry": ATHENA_RETRY,
                "Catch": self.catch(step),
                "Next": more_ok,
            },
        )
        self.add(
            more_ok,
            {
                "Type": "Choice",
                "Choices": [{"Variable": "$.more.rows[0]", "IsPresent": True, "Next": too_many}],
                "Default": h,
            },
        )
        self.add(
            too_many,
            {
                "Type": "Fail",
                "Error": f"{step.qualified_id} failed",
                "Cause": (
                    f"step {step.qualified_id}: the query returned more than {MAX_ROWS} "
                    "rows to map over"
                ),
            },
        )
        self.add(
            h,
            {
                "Type": "Pass",
                "Comment": "The first row of Athena results is the header; keep only the rows.",
                "Parameters": {"rows.$": "$.page.ResultSet.Rows[1:]"},
                "ResultPath": "$.page",
                "Next": m,
            },
        )
        self.add(
            m,
            self._map_state(
                step,
                f"{step.id}, one iteration per row.",
                "$.page.rows",
                concurrency,
                body_start,
                body,
                result_path,
                next_,
                selector=selector,
            ),
        )
        return q

    def step_for_each(self, step: StepPlan, next_: str) -> str:
        # Map items carry raw values: a Lambda child gets them as they are (as the local
        # engine passes them); Athena children quote them in their ExecutionParameters.
        items: list[dict] = []
        self.literal_paths = {}
        if step.over_values is not None:
            name = step.over_params[0]
            items = [{name: v} for v in step.over_values]
            if any("'" in v for v in step.over_values):
                # Step Functions cannot double a quote at run time: escape fixed values here.
                for item, v in zip(items, step.over_values, strict=True):
                    item[_SQL_TEXT] = {name: v.replace("'", "''")}
                self.literal_paths = {name: f"$.{_SQL_TEXT}.{name}"}
        body: dict[str, dict] = {}
        child_next: str | None = None
        start = None
        try:
            for child in reversed(step.children):
                start = self._inner(child, child_next, body)
                child_next = start
        finally:
            self.literal_paths = {}
        assert start is not None
        concurrency = step.max_concurrency or 1
        if step.over_values is not None:
            return self._fixed_map(step, next_, items, start, body)
        selector: dict[str, Any] = {
            f"{p}.$": f"$$.Map.Item.Value.Data[{i}].VarCharValue"
            for i, p in enumerate(step.over_params)
        }
        # Athena parameters are SQL literals and Step Functions cannot escape a quote, so a
        # row value holding one stops the run instead of reaching the SQL.
        guard = f"{step.id} row values safe?"
        body[guard] = {
            "Type": "Choice",
            "Choices": [
                {
                    "Or": [
                        {"Variable": f"$.{p}", "StringMatches": "*'*"} for p in step.over_params
                    ],
                    "Next": f"{step.id} unsafe row value",
                }
            ],
            "Default": start,
        }
        body[f"{step.id} unsafe row value"] = {
            "Type": "Fail",
            "Error": f"{step.qualified_id} failed",
            "Cause": (
                f"step {step.qualified_id}: a row value contains a single quote, which cannot "
                "be passed safely as an Athena parameter"
            ),
        }
        return self._rows_map(
            step, next_, self.sql(step.over_sql) or "", selector, guard, body, None, concurrency
        )

    def _inner(self, child: StepPlan, next_: str | None, body: dict[str, dict]) -> str:
        """A step inside for_each: its parameters are fields of the Map item."""
        params_path = self.params_path(child.params)
        if child.kind == "athena_query":
            # Iterations run side by side: INSERT INTO appends files (and partitions) safely,
            # where UNLOAD would need one empty destination per iteration.
            table, _, glue_name = self.write_target(child.writes[0])
            query = f"INSERT INTO {glue_name}\n{self.sql(child.sql)}"
            body[child.id] = self.athena_task(
                query,
                self.describe(child, f"Append to {table.ref}."),
                next_,
                params_path=params_path,
            )
            return child.id
        if child.kind == "check":
            states, start = self._check_states(child, next_, inside=True)
            body.update(states)
            return start
        if child.kind == "lambda":
            body[child.id] = self._lambda_step_state(child, next_)
            return child.id
        raise CompileError(f"step {child.qualified_id}: {child.kind} is not supported in for_each")


# Step Functions refuses longer state names. With step ids and table names of at most
# 60 characters (the spec's limit), the longest generated name is 77: `<id> unload one value`.
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
