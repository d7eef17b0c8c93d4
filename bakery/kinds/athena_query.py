"""athena_query: a Jinja2 SELECT in Athena SQL, written `into` a table of the layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from bakery.kinds import quarantine as quarantine_
from bakery.kinds.base import StepPlan
from bakery.kinds.registry import Kind
from bakery.spec_types import StepBase, StepName, TableRef

if TYPE_CHECKING:
    from bakery.kinds.base import Builder, LayerFile


class AthenaQuery(StepBase):
    """A Jinja2 SELECT in Athena SQL, written `into` a table."""

    type: Literal["athena_query"]
    id: StepName
    query: str | None = Field(None, description="Template path, relative to the layer file.")
    sql: str | None = Field(None, description="Or the SELECT inline.")
    into: TableRef = Field(description="Table the result is written to (UNLOAD/COPY).")
    quarantine: quarantine_.Quarantine | None = Field(
        None,
        description="Rows whose reason column is not NULL go to a rejects table instead; "
        "the run fails only when more are rejected than the limits allow.",
    )


@dataclass
class QueryStepPlan(StepPlan):
    """An athena_query's plan; `quarantine` when its bad rows go to a rejects table
    (writes[0] is the step's table, writes[1] the rejects table)."""

    quarantine: quarantine_.QuarantinePlan | None = None


def build(
    b: Builder,
    lf: LayerFile,
    path: tuple,
    step: AthenaQuery,
    plan: QueryStepPlan,
    params: list[str],
) -> bool:
    into = b.own_ref(lf, path + ("into",), step.into)
    out = b.render_sql(lf, path, query=step.query, sql=step.sql, params=params)
    if out is None:
        return False
    rendered, template = out
    plan.sql, plan.params, plan.template = rendered.sql, rendered.params, template
    plan.reads = rendered.reads
    plan.writes = [into] if into else []
    anchor = path + ("query" if step.query else "sql",)
    got = b.analyse_sql(lf, anchor, rendered, template, into)
    if step.quarantine is None:
        b.check_output(lf, anchor, got, into)
        return True
    plan.quarantine = quarantine_.build(b, lf, path, step.quarantine, into, got)
    if plan.quarantine is not None:
        plan.writes.append(plan.quarantine.into)
        if got is not None:  # the rejects' output types must fit their table too
            b.analyse_sql(lf, anchor, rendered, template, plan.quarantine.into)
    return True


def _writes(step: AthenaQuery) -> list[str]:
    return [step.into] + ([step.quarantine.into] if step.quarantine else [])


KIND = Kind(
    "athena_query",
    AthenaQuery,
    build,
    writes_through_query=True,
    in_for_each=True,
    writes=_writes,
    plan_class=QueryStepPlan,
    summary="writes a query's rows into a table",
)
