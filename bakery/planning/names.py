"""Names of the deployed things, beside the plan: bakery.aws_limits checks them while the
plan is built, and the CDK app, the ASL compiler, simulate and the CLI use them (no aws_cdk).

With `resource_prefix` in bakery.yaml (e.g. `bakery-{{ env }}`, filled in per environment
by the plan) the core stack is `<prefix>-core` and each layer's stack and state machine
`<prefix>-<layer>`; without it, `<project>-core-<env>` and `<project>-<layer>-<env>`.
The trigger queues and the execution log group are named after the layer's stack too
(below); every other resource (Lambda functions, their log groups, rules, pipes, roles) is
left for CloudFormation to name from its stack's name, so it is unique wherever the stack
is. bakery.aws_limits checks every one of these names against AWS's limits.
"""

from __future__ import annotations

from bakery.planning.model import Plan, TablePlan

# A query-written table is built in `<name>__staging` before it is published
# (bakery.compile.staging).
STAGING_SUFFIX = "__staging"


def _dashed(name: str) -> str:
    return name.replace("_", "-")


def core_stack_name(plan: Plan) -> str:
    prefix = plan.project.resource_prefix
    return f"{prefix}-core" if prefix else f"{plan.project.name}-core-{plan.env}"


def layer_stack_name(plan: Plan, layer: str) -> str:
    prefix = plan.project.resource_prefix
    if prefix:
        return f"{prefix}-{_dashed(layer)}"
    return f"{plan.project.name}-{_dashed(layer)}-{plan.env}"


def state_machine_name(plan: Plan, layer: str) -> str:
    return layer_stack_name(plan, layer)


def trigger_queue_name(plan: Plan, layer: str) -> str:
    """The layer's FIFO trigger queue. Named here, not by CloudFormation: a name it makes up
    for a FIFO queue (<stack>-<logical id>-<suffix>.fifo) is not shortened to SQS's 80
    characters (aws-cloudformation/cloudformation-coverage-roadmap#280)."""
    return f"{layer_stack_name(plan, layer)}-trigger.fifo"


def dead_letter_queue_name(plan: Plan, layer: str) -> str:
    """Where the trigger queue moves a message it failed to deliver five times."""
    return f"{layer_stack_name(plan, layer)}-trigger-dlq.fifo"


def execution_log_group_name(plan: Plan, layer: str) -> str:
    """The state machine's execution log group, under /aws/vendedlogs/states/ as Step
    Functions recommends, to stay clear of the size limit of CloudWatch Logs' resource policy
    (https://docs.aws.amazon.com/step-functions/latest/dg/sfn-best-practices.html#bp-cwl)."""
    return f"/aws/vendedlogs/states/{state_machine_name(plan, layer)}"


def staging_name(table: TablePlan) -> str:
    """The Glue table name of `table`'s staging table."""
    return f"{table.name}{STAGING_SUFFIX}"
