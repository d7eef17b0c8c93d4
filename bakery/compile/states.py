"""Generic Step Functions state builders: Athena and Lambda tasks with their retries,
the Fail state a step's Catch goes to, an UNLOAD retried with its emptying, and the
checks every definition passes (state names Step Functions accepts).

Per-kind states are in `bakery.compile.kind_states`, Map states in
`bakery.compile.maps`, staging and publish in `bakery.compile.publish_states`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from bakery.compile.errors import CompileError
from bakery.planning.model import LayerPlan, Plan, StepPlan

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
ATHENA_QUOTA = "Athena.TooManyRequestsException"
ATHENA_TRANSIENT = ["Athena.InternalServerException"]
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
SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.-]+$")
# Field of a fixed for_each item holding its values with quotes doubled (only when one has a quote).
SQL_TEXT = "sql_text"


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


# Athena refuses a query past the account's active DML quota, which counts running and
# queued queries (https://docs.aws.amazon.com/athena/latest/ug/service-limits.html). Every
# environment in the account, and other systems, start theirs at 01:00, so a refused query
# waits for the others to end: its own retrier keeps trying for well over an hour (the
# expected FULL-jittered wait is half the un-jittered sum, 10+20+...+160 then 35 x 300 s:
# about 90 minutes). Retrier fields (IntervalSeconds and MaxAttempts up to 99999999,
# MaxDelaySeconds a positive integer capping the backoff, JitterStrategy FULL picking each
# wait uniformly between 0 and the capped interval, so throttled queries spread out):
# https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
# (#error-handling-retrying-after-an-error; the fields' rules in
# aws/amazon-states-language-service#138). The layer's timeout still ends a run that waits
# too long.
QUOTA_RETRY = retry([ATHENA_QUOTA], 10, 40, 300)
# Reads and DDL (SELECT, MSCK REPAIR) are safe to run again whatever happened.
ATHENA_RETRY = QUOTA_RETRY + retry(ATHENA_TRANSIENT, 5, 6, 120) + retry(ATHENA_UNMODELLED, 5, 3, 60)
# An UNLOAD retried as a whole with the emptying of its destination (see unload_states).
UNLOAD_RETRY = ATHENA_RETRY
# INSERT INTO appends: an attempt that may have run would add its rows twice, so only a
# refused submission (the query quota, TooManyRequestsException) is retried.
INSERT_RETRY = QUOTA_RETRY
LAMBDA_RETRY = retry(LAMBDA_TRANSIENT, 2, 6, 60)


def intrinsic_text(text: str) -> str:
    """Escape text for a string literal inside an intrinsic function."""
    return re.sub(r"([\\'{}])", r"\\\1", text)


def function_key(name: str) -> str:
    """DefinitionSubstitutions key of a Lambda function ARN."""
    return f"Function_{name}"


@dataclass
class Compiled:
    definition: dict[str, Any]
    functions: list[str] = field(default_factory=list)  # names used via function_key()

    def to_json(self) -> str:
        return json.dumps(self.definition, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


class StateBuilder:
    """The states of one layer's definition as they are added, and the builders of
    generic states."""

    def __init__(self, plan: Plan, layer: LayerPlan):
        self.plan = plan
        self.layer = layer
        self.states: dict[str, dict[str, Any]] = {}
        self.functions: list[str] = []

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
                f"States.Format('step {intrinsic_text(step.qualified_id)} failed: {{}}', "
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
        return "States.Array(" + ", ".join(f"$.{SQL_TEXT}.{p}" for p in params) + ")"

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

    def describe(self, step: StepPlan, default: str) -> str:
        return step.description or default

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
        payload: dict[str, Any] = (
            {"location.$": location_path} if location_path else {"location": location}
        )
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


# Step Functions refuses longer state names. With step ids and table names of at most
# 60 characters (the spec's limit), the longest generated name is 79: `<id> empty value folder`.
MAX_STATE_NAME = 80


def _check_state_name(name: str) -> None:
    if len(name) > MAX_STATE_NAME:
        raise CompileError(f"state name {name!r} is longer than {MAX_STATE_NAME} characters")


def check_nested_state_names(states: dict[str, dict[str, Any]]) -> None:
    """The states inside Map bodies, which are built without add()."""
    for state in states.values():
        processor = state.get("ItemProcessor")
        if processor:
            for name in processor["States"]:
                _check_state_name(name)
            check_nested_state_names(processor["States"])


def _link(state: dict[str, Any], next_: str | None) -> None:
    if next_ is None:
        state["End"] = True
    else:
        state["Next"] = next_
