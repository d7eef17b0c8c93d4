"""Names of the deployed things, shared by the CDK app and the CLI (no aws_cdk import).

With `resource_prefix` in bakery.yaml (e.g. `bakery-{{ env }}`, filled in per environment
by the plan) the core stack is `<prefix>-core` and each layer's stack and state machine
`<prefix>-<layer>`; without it, `<project>-core-<env>` and `<project>-<layer>-<env>`.
Every other resource (Lambda functions, queues, log groups, rules, pipes, roles) is left
for CloudFormation to name from its stack's name, so it is unique wherever the stack is.
"""

from __future__ import annotations

from bakery.plan import Plan


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
