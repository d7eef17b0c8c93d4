"""Step Functions definitions (Amazon States Language) compiled from a layer's plan.

Pure Python over the plan (no aws_cdk): the CDK layer stack deploys exactly the
dict built here, with `${...}` placeholders for the ARNs of the Lambda
functions, which CloudFormation fills in through DefinitionSubstitutions.
`bakery synth` writes the same dict to build/asl/<layer>.asl.json, so the file a
reviewer diffs is the definition that is deployed.

Shape of a layer's state machine, in spec order:

    start (Pass: wrap any input) -> [take the lock] -> step 1 -> step 2 ...
        -> publish -> [repair <table> ...] -> [release the lock] -> succeeded

A singleton layer's lock, and its release after a failure (outside the definition):
bakery.compile.lock.

Staged publish (bakery.planning.publish_plan, bakery.compile.staging): every table the
layer writes is built in its staging table and every export writes into a staged
folder; the checks, later queries and exports read staging. After the last step comes
the one publish state: the publish Lambda copies what changed from staging over live
and deletes what is stale, then MSCK REPAIR loads the live partitions. A run that fails
before publish leaves every live object as it was.

Every Task retries transient service errors with jittered exponential backoff
and catches everything else into a Fail state named after the step. Athena runs
through the native `.sync` integration; runtime values (a fan-out value, a
column of a query row) travel as ExecutionParameters, never as SQL text.
"""

from __future__ import annotations

from bakery.compile import lock
from bakery.compile.athena_sql import (  # noqa: F401 (re-exported)
    check_columns,
    check_row_text,
    rows_query,
    sql_literal,
    unload,
    unload_options,
)
from bakery.compile.errors import CompileError
from bakery.compile.kind_states import INNER_STATE_BUILDERS, STATE_BUILDERS
from bakery.compile.maps import row_selector  # noqa: F401 (re-exported)
from bakery.compile.publish_states import (  # noqa: F401 (re-exported)
    PublishStates,
    partition_values,
)
from bakery.compile.states import (  # noqa: F401 (re-exported)
    ATHENA_RESULTS,
    ATHENA_RETRY,
    ATHENA_SYNC,
    INSERT_RETRY,
    LAMBDA_INVOKE,
    LAMBDA_RETRY,
    UNLOAD_RETRY,
    Compiled,
    check_nested_state_names,
    function_key,
)
from bakery.planning.model import LayerPlan, Plan, StepPlan


class LayerCompiler(PublishStates):
    """One layer's definition: its steps by kind (kind_states), staged and published."""

    def compile(self) -> Compiled:
        next_ = self.add("succeeded", {"Type": "Succeed", "Comment": "Every step ran."})
        if self.layer.singleton:
            next_ = lock.release_states(self, next_)
        next_ = self.publish(next_)
        for step in reversed(self.layer.steps):
            next_ = self.step(step, next_)
        if self.layer.singleton:
            next_ = lock.take_states(self, next_)
        start = self.add(
            "start",
            {
                "Type": "Pass",
                "Comment": "Keep the trigger's input (any JSON) under $.input; steps add fields.",
                "Parameters": {"input.$": "$"},
                "Next": next_,
            },
        )
        check_nested_state_names(self.states)
        definition = {
            "Comment": (
                f"bakery layer {self.layer.name} ({self.plan.env}): {self.layer.description}"
            ),
            "StartAt": start,
            "States": self.states,
            "TimeoutSeconds": self.layer.timeout_minutes * 60,
        }
        return Compiled(definition, self.functions)

    def step(self, step: StepPlan, next_: str) -> str:
        builder = STATE_BUILDERS.get(step.kind)
        if builder is None:
            raise CompileError(f"step {step.qualified_id}: no AWS compiler for kind {step.kind!r}")
        return builder(self, step, next_)

    def inner_step(self, child: StepPlan, next_: str | None, body: dict[str, dict]) -> str:
        """A step inside for_each: its parameters are fields of the Map item."""
        builder = INNER_STATE_BUILDERS.get(child.kind)
        if builder is None:
            raise CompileError(
                f"step {child.qualified_id}: {child.kind} is not supported in for_each"
            )
        return builder(self, child, next_, body)


def compile_layer(plan: Plan, layer: LayerPlan) -> Compiled:
    """The state machine definition of one layer."""
    return LayerCompiler(plan, layer).compile()


def layer_asl_json(plan: Plan, layer: LayerPlan) -> str:
    """The text of build/asl/<layer>.asl.json, as `bakery synth` writes it (no CDK values)."""
    return compile_layer(plan, layer).to_json()
