"""lambda: a handler in this repository (bakery/lambdas/<module>.py: handler)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from bakery.kinds.base import StepPlan
from bakery.kinds.registry import Kind
from bakery.spec_types import StepBase, StepName, TableRef

if TYPE_CHECKING:
    from bakery.kinds.base import Builder, LayerFile

LAMBDAS_DIR = Path(__file__).resolve().parent.parent / "lambdas"


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


@dataclass
class LambdaStepPlan(StepPlan):
    """A lambda step's plan: the function the back-ends deploy and invoke."""

    handler: str = ""
    ssm_parameters: dict[str, str] = field(default_factory=dict)
    timeout_seconds: int = 300
    memory_mb: int = 1024
    ephemeral_storage_mb: int = 512


def build(
    b: Builder, lf: LayerFile, path: tuple, step: Lambda, plan: LambdaStepPlan, params: list[str]
) -> bool:
    plan.handler = step.handler
    plan.ssm_parameters = dict(step.ssm_parameters)
    plan.timeout_seconds = step.timeout_seconds
    plan.memory_mb = step.memory_mb
    plan.ephemeral_storage_mb = step.ephemeral_storage_mb
    module = step.handler.split(".")[2]
    if not (LAMBDAS_DIR / f"{module}.py").is_file():
        b.problem(
            lf.doc,
            path + ("handler",),
            f"no module bakery/lambdas/{module}.py for handler {step.handler!r}",
        )
    plan.reads = [
        r for j, ref in enumerate(step.reads) if (r := b.ref_at(lf, path + ("reads", j), ref))
    ]
    plan.writes = [
        r for j, ref in enumerate(step.writes) if (r := b.own_ref(lf, path + ("writes", j), ref))
    ]
    plan.environment = b.render_environment(lf, path, step.environment)
    return True


KIND = Kind(
    "lambda",
    Lambda,
    build,
    in_for_each=True,
    writes=lambda step: list(step.writes),
    plan_class=LambdaStepPlan,
    summary="runs a handler of bakery/lambdas",
)
