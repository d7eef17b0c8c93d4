"""Names of the deployed things, shared by the CDK app and the CLI (no aws_cdk import)."""

from __future__ import annotations

from bakery.plan import Plan


def _dashed(name: str) -> str:
    return name.replace("_", "-")


def core_stack_name(plan: Plan) -> str:
    return f"{plan.project.name}-core-{plan.env}"


def layer_stack_name(plan: Plan, layer: str) -> str:
    return f"{plan.project.name}-{_dashed(layer)}-{plan.env}"


def state_machine_name(plan: Plan, layer: str) -> str:
    return f"{plan.project.name}-{_dashed(layer)}-{plan.env}"
