"""Step Functions definitions (Amazon States Language) compiled from a layer's plan.

Pure Python over the plan (no aws_cdk): the CDK layer stack deploys exactly the
dict built here, with `${...}` placeholders for the ARNs of the Lambda
functions, which CloudFormation fills in through DefinitionSubstitutions.
`bakery synth` writes the same dict to build/asl/<layer>.asl.json, so the file a
reviewer diffs is the definition that is deployed.

Shape of a layer's state machine, in spec order:

    start (Pass: wrap any input) -> [take the lock] -> step 1 -> step 2 ...
        -> publish -> [export_by_key steps] -> [release the lock] -> succeeded

A singleton layer's lock, and its release after a failure (outside the definition):
bakery.compile.lock.

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
    publish_index,
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
