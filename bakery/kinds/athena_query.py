"""athena_query: a Jinja2 SELECT in Athena SQL, written `into` a table of the layer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from bakery.kinds.registry import Kind
from bakery.spec_types import StepBase, StepName, TableRef

if TYPE_CHECKING:
    from bakery.plan import Builder, StepPlan
    from bakery.workspace import LayerFile


class AthenaQuery(StepBase):
    """A Jinja2 SELECT in Athena SQL, written `into` a table."""

    type: Literal["athena_query"]
    id: StepName
    query: str | None = Field(None, description="Template path, relative to the layer file.")
    sql: str | None = Field(None, description="Or the SELECT inline.")
    into: TableRef = Field(description="Table the result is written to (UNLOAD/COPY).")


def build(
    b: Builder, lf: LayerFile, path: tuple, step: AthenaQuery, plan: StepPlan, params: list[str]
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
    b.check_output(lf, anchor, b.analyse_sql(lf, anchor, rendered, template, into), into)
    return True


KIND = Kind(
    "athena_query",
    AthenaQuery,
    build,
    writes_through_query=True,
    in_for_each=True,
    writes=lambda step: [step.into],
    summary="writes a query's rows into a table",
)
