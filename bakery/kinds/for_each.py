"""for_each: run steps once per value or per row of a query, at most max_concurrency at once.

Which kinds its body may hold is each kind's own fact (`Kind.in_for_each`): the body's
union is made from the registry once every kind is registered (bakery.kinds).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from bakery.kinds.registry import Kind
from bakery.spec_types import Identifier, StepBase, StepName, Strict, Values

if TYPE_CHECKING:
    from bakery.kinds.base import Builder, LayerFile, StepPlan


class ValuesSource(Strict):
    values: Values = Field(min_length=1, description="A list, or a range such as A..Z.")


class QuerySource(Strict):
    query: str | None = None
    sql: str | None = None


class ForEach(StepBase):
    """Run steps once per value or per row of a query, at most max_concurrency at once."""

    type: Literal["for_each"]
    id: StepName
    over: ValuesSource | QuerySource
    as_: Identifier | None = Field(
        None, alias="as", description="Parameter name of each value (for `values`)."
    )
    max_concurrency: int = Field(5, ge=1, le=100)
    steps: list[InnerStep] = Field(min_length=1)  # type: ignore[name-defined]  # noqa: F821 (bakery.kinds completes it)


def build(
    b: Builder, lf: LayerFile, path: tuple, step: ForEach, plan: StepPlan, params: list[str]
) -> bool:
    plan.max_concurrency = step.max_concurrency
    if isinstance(step.over, ValuesSource):
        if step.as_ is None:
            b.problem(lf.doc, path, "for_each over values needs 'as': the parameter name")
            return True
        plan.over_values = list(step.over.values)
        plan.over_params = [step.as_]
    else:
        out = b.render_sql(lf, path + ("over",), query=step.over.query, sql=step.over.sql)
        if out is None:
            return True
        rendered, template = out
        plan.over_sql, plan.reads = rendered.sql, rendered.reads
        columns = b.analyse_sql(lf, path + ("over",), rendered, template, needed=True)
        plan.over_params = columns or []
        if step.as_ is not None:
            plan.over_params = [step.as_] if len(plan.over_params) == 1 else plan.over_params
    for j, child in enumerate(step.steps):
        child_plan = b.build_step(lf, path + ("steps", j), child, params=plan.over_params)
        if child_plan is not None:
            plan.children.append(child_plan)
    return True


KIND = Kind(
    "for_each",
    ForEach,
    build,
    children=lambda step: list(step.steps),
    summary="runs its steps per value or row",
)
