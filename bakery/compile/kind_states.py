"""The states of each step kind: the ASL back-end's tables keyed by kind.

STATE_BUILDERS makes a top-level step's states and returns the name of its first;
INNER_STATE_BUILDERS adds a for_each body step's states to the Map's body. A new kind
adds its function and one entry here (tests/spec/test_kinds.py checks the tables cover
every registered kind). The generic builders they share live in states.py and maps.py;
staging (which table a step reads and writes before publish) in publish_states.py.

Over the ~400-line guide because it is one table per back-end, one function per kind;
splitting it per kind would scatter the table the tests check for completeness.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bakery.compile.athena_sql import check_columns, check_row_text, sql_literal, unload
from bakery.compile.errors import CompileError
from bakery.compile.maps import row_selector
from bakery.compile.publish_states import partition_values
from bakery.compile.staging import export_staging_location, staging_glue_name, staging_location
from bakery.compile.states import INSERT_RETRY, SAFE_VALUE, SQL_TEXT, intrinsic_text
from bakery.kinds.export_by_key import ExportStepPlan
from bakery.kinds.lambda_ import LambdaStepPlan
from bakery.kinds.quarantine import QuarantinePlan, rejects_state
from bakery.planning.model import StepPlan

if TYPE_CHECKING:
    from bakery.compile.asl import LayerCompiler


def purge_prefix_states(c: LayerCompiler, step: StepPlan, next_: str) -> str:
    location = step.location
    staged = [c.staged_table(ref) for ref in step.writes]
    if staged and staged[0] is not None:
        location = staging_location(staged[0])  # the live table stays until publish
    state = c.lambda_task(
        "purge",
        {"location": location},
        c.describe(step, f"Empty {location}"),
        next_,
        Catch=c.catch(step),
    )
    return c.add(step.id, state)


def refresh_partitions_states(c: LayerCompiler, step: StepPlan, next_: str) -> str:
    sql = step.sql
    table = c.staged_table(step.writes[0]) if step.writes else None
    if table is not None:
        sql = f"MSCK REPAIR TABLE {staging_glue_name(table)}"
    state = c.athena_task(sql, c.describe(step, "Load partitions."), next_)
    state["Catch"] = c.catch(step)
    return c.add(step.id, state)


def athena_query_states(c: LayerCompiler, step: StepPlan, next_: str) -> str:
    table, location, _ = c.write_target(step.writes[0])
    keys = [k.name for k in table.partition_keys]
    sql = c.sql(step.sql) or ""
    quarantine = getattr(step, "quarantine", None)
    then = next_
    if quarantine is not None:  # two statements: the good rows here, then the rejected
        sql, then = quarantine.accepted_sql(sql), rejects_state(step.id)
    query = unload(sql, table, location, keys)
    state = c.unload_states(
        step.id,
        f"{step.id} empty destination",
        f"{step.id} unload",
        c.describe(step, f"Write {table.ref}."),
        then,
        query=query,
        location=location,
    )
    state["Catch"] = c.catch(step)
    name = c.add(step.id, state)
    if quarantine is not None:
        rejects_states(c, step, next_)
    return name


def geo_join_states(c: LayerCompiler, step: StepPlan, next_: str) -> str:
    if not step.over_values:
        return athena_query_states(c, step, next_)
    # Fanned out: one UNLOAD per value into <location><column>=<value>/, selecting every
    # column but the fan-out one (its value is the folder), so the queries run side by side
    # without sharing a destination (UNLOAD refuses a non-empty one).
    column = step.over_params[0]
    table, table_location, _ = c.write_target(step.writes[0])
    keys = [k.name for k in table.partition_keys]
    if column not in keys:
        raise CompileError(
            f"step {step.qualified_id}: fan_out column {column!r} must also be a partition "
            f"key of {table.ref} to write one folder per value"
        )
    rest = [k for k in keys if k != column]
    selected = ", ".join([col.name for col in table.columns] + rest)
    inner = f"SELECT {selected}\nFROM (\n{c.sql(step.sql)}\n) AS fanned_out"
    items = []
    for value in step.over_values:
        if not SAFE_VALUE.match(value):
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
        body_start: c.unload_states(
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
    return c.fixed_map(step, next_, items, body_start, body)


def check_states(c: LayerCompiler, step: StepPlan, next_: str) -> str:
    states, start = check_query_states(c, step, next_, inside=False)
    for name, state in states.items():
        c.add(name, state)
    return c.live_partitions(step, start)


def check_query_states(
    c: LayerCompiler, step: StepPlan, next_: str | None, *, inside: bool
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
    sql = c.sql(step.sql) or ""
    query = c.athena_task(
        # a message-column check's query already returns the whole message, never NULL
        check_row_text(sql, columns) if columns and not step.message_column else sql,
        f"Check: {what}",
        r,
        params_path=c.params_path(step.params),
        result_path="$.check",
    )
    if not inside:
        query["Catch"] = c.catch(step)
    states[q] = query
    results = c.results_task("$.check.id", 2, "$.check", v)
    if not inside:
        results["Catch"] = c.catch(step)
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
            f"States.Format('{intrinsic_text(prefix)}{{}}', $.check.rows[1].Data[0].VarCharValue)"
        )
    else:  # columns not known at synth (SELECT *): the row as JSON
        cause = (
            f"States.Format('{intrinsic_text(prefix)}{{}} = {{}}', "
            "States.JsonToString($.check.rows[0].Data), "
            "States.JsonToString($.check.rows[1].Data))"
        )
    if step.message_column:
        # The query wrote the whole message: the local engine reports the same text.
        cause = (
            f"States.Format('check {intrinsic_text(step.qualified_id)} failed: {{}}', "
            "$.check.rows[1].Data[0].VarCharValue)"
        )
    states[f] = {
        "Type": "Fail",
        "Error": f"{step.qualified_id} failed",
        "CausePath": cause,
    }
    return states, q


def lambda_states(c: LayerCompiler, step: LambdaStepPlan, next_: str) -> str:
    state = lambda_state(c, step, next_)
    state["Catch"] = c.catch(step)
    return c.add(step.id, state)


def lambda_state(c: LayerCompiler, step: LambdaStepPlan, next_: str | None) -> dict[str, Any]:
    # The table a Lambda step writes reaches it as input, at its staged location (the
    # publish plan stages it like any other): the Lambda never writes the live table.
    payload: dict[str, Any] = {"execution_id.$": "$$.Execution.Id", "step": step.qualified_id}
    if step.writes:
        payload["table_location"] = c.read_location(step.writes[0])
    for name in step.params or []:
        payload[f"{name}.$"] = f"$.{name}"
    return c.lambda_task(step.id, payload, c.describe(step, f"Run {step.handler}."), next_)


def export_by_key_states(c: LayerCompiler, step: ExportStepPlan, next_: str) -> str:
    """The export writes into its staged folder (emptied first: a failed run may have
    left files there), read from the staged table; the layer's publish state publishes
    the folder (and deletes the stale key files when delete_stale) after every export."""
    table = c.plan.table(step.reads[0])
    staged = c.staged_table(table.ref)
    keys = [k.name for k in table.partition_keys]
    destination = export_staging_location(step.location or "")
    payload = {
        "table_location": c.read_location(table.ref),
        "partition.$": "$.partition",
        "destination": destination,
        "key": step.key,
        "columns": list(step.columns),
        "sort_by": list(step.sort_by),
        "unique_by": step.unique_by,
        "empty_unless_any": step.empty_unless_any,
    }
    body = {
        f"{step.id} export partition": c.lambda_task(
            f"{step.id}_export",
            payload,
            "Write one file per key value of this partition.",
            None,
            ResultSelector={"keys.$": "$.Payload.keys"},
            ResultPath="$",
        )
    }
    values = partition_values(c.plan, table)
    items: list[dict[str, Any]]
    if not keys:
        items = [{"partition": None}]
    elif values is not None:
        items = [{"partition": {keys[0]: v}} for v in values]
    else:
        # Partition values not known at synth: list them from the table's $partitions.
        columns = ", ".join(f'"{k}"' for k in keys)
        name = staging_glue_name(staged).split(".", 1)[1] if staged else table.name
        sql = f'SELECT DISTINCT {columns} FROM "{table.glue_database}"."{name}$partitions"'
        selector = {"partition": row_selector(keys, sql_text=False)}
        first = c.rows_map(
            step,
            next_,
            sql,
            keys,
            selector,
            f"{step.id} export partition",
            body,
            "$.exported",
            10,
        )
        return empty_export_staging(c, step, destination, first)
    first = c.fixed_map(
        step,
        next_,
        items,
        f"{step.id} export partition",
        body,
        "$.exported",
        min(len(items), 10),
    )
    return empty_export_staging(c, step, destination, first)


def empty_export_staging(c: LayerCompiler, step: StepPlan, destination: str, next_: str) -> str:
    state = c.lambda_task(
        "purge",
        {"location": destination},
        f"Empty the staged folder of {step.id}: files a failed run left there are not published.",
        next_,
        Catch=c.catch(step),
    )
    return c.add(f"{step.id} empty staging", state)


def for_each_states(c: LayerCompiler, step: StepPlan, next_: str) -> str:
    # Map items carry raw values (a Lambda child gets them as they are, as the local
    # engine passes them) and their SQL literals (for Athena children's parameters).
    body: dict[str, dict] = {}
    child_next: str | None = None
    start = None
    for child in reversed(step.children):
        start = c.inner_step(child, child_next, body)
        child_next = start
    assert start is not None
    concurrency = step.max_concurrency or 1
    if step.over_values is not None:
        name = step.over_params[0]
        items = [{name: v, SQL_TEXT: {name: sql_literal(v)}} for v in step.over_values]
        return c.fixed_map(step, next_, items, start, body)
    selector = row_selector(step.over_params)
    return c.rows_map(
        step,
        next_,
        c.sql(step.over_sql) or "",
        step.over_params,
        selector,
        start,
        body,
        None,
        concurrency,
    )


def inner_athena_query(
    c: LayerCompiler, child: StepPlan, next_: str | None, body: dict[str, dict]
) -> str:
    # Iterations run side by side: INSERT INTO appends files (and partitions) safely,
    # where UNLOAD would need one empty destination per iteration.
    table, _, glue_name = c.write_target(child.writes[0])
    query = f"INSERT INTO {glue_name}\n{c.sql(child.sql)}"
    body[child.id] = c.athena_task(
        query,
        c.describe(child, f"Append to {table.ref}."),
        next_,
        params_path=c.params_path(child.params),
        retry_=INSERT_RETRY,
    )
    return child.id


def inner_check(c: LayerCompiler, child: StepPlan, next_: str | None, body: dict[str, dict]) -> str:
    states, start = check_query_states(c, child, next_, inside=True)
    body.update(states)
    return start


def inner_lambda(
    c: LayerCompiler, child: LambdaStepPlan, next_: str | None, body: dict[str, dict]
) -> str:
    body[child.id] = lambda_state(c, child, next_)
    return child.id


TopLevelBuilder = Callable[["LayerCompiler", Any, str], str]


def _after_upstream_probes(build: TopLevelBuilder) -> TopLevelBuilder:
    """A top-level step's states, preceded by the probes of the upstream tables it is
    the first to read (PublishStates.upstream_probes), whatever its kind."""

    def states(c: LayerCompiler, step: StepPlan, next_: str) -> str:
        return c.upstream_probes(step, build(c, step, next_))

    return states


# The ASL back-end's tables, one entry per kind (tests/spec/test_kinds.py checks they
# cover every registered kind): the states of a top-level step, returning the first
# state's name...
# A builder takes the kind's own StepPlan subclass (Kind.plan_class), hence Any.
_TOP_LEVEL: dict[str, TopLevelBuilder] = {
    "purge_prefix": purge_prefix_states,
    "athena_query": athena_query_states,
    "geo_join": geo_join_states,
    "check": check_states,
    "for_each": for_each_states,
    "lambda": lambda_states,
    "export_by_key": export_by_key_states,
    "refresh_partitions": refresh_partitions_states,
}
STATE_BUILDERS = {kind: _after_upstream_probes(build) for kind, build in _TOP_LEVEL.items()}
# ...and the states of a step inside a for_each body (the kinds allowed there), added
# to the Map's body.
INNER_STATE_BUILDERS: dict[
    str, Callable[[LayerCompiler, Any, str | None, dict[str, dict]], str]
] = {
    "athena_query": inner_athena_query,
    "check": inner_check,
    "lambda": inner_lambda,
}


def rejects_states(c: LayerCompiler, step: Any, next_: str) -> str:
    """The second statement on Athena, after the good rows' UNLOAD: UNLOAD the rejected
    rows into the rejects table (its staging table before publish), emptied first and
    retried as a whole like the step's own UNLOAD. Returns the state's name."""
    quarantine: QuarantinePlan = step.quarantine
    table, location, _ = c.write_target(quarantine.into)
    keys = [k.name for k in table.partition_keys]
    query = unload(quarantine.rejected_sql(c.sql(step.sql) or ""), table, location, keys)
    name = rejects_state(step.id)
    state = c.unload_states(
        name,
        f"{step.id} empty rejects",
        f"{step.id} unload rejects",
        f"Write the rows {step.id} rejects into {table.ref}.",
        next_,
        query=query,
        location=location,
    )
    state["Catch"] = c.catch(step)
    return c.add(name, state)
