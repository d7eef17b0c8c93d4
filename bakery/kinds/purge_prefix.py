"""purge_prefix: empty the location of a table this layer writes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from bakery.kinds.registry import Kind
from bakery.spec_types import StepBase, StepName, TableRef

if TYPE_CHECKING:
    from bakery.plan import Builder, StepPlan
    from bakery.workspace import LayerFile


class PurgePrefix(StepBase):
    """Empty the location of a table this layer writes."""

    type: Literal["purge_prefix"]
    id: StepName
    table: TableRef | None = Field(None, description="Purge this table's location.")
    prefix: str | None = Field(
        None, description="Or a prefix template; it must be a table location this layer writes."
    )


def build(
    b: Builder, lf: LayerFile, path: tuple, step: PurgePrefix, plan: StepPlan, params: list[str]
) -> bool:
    if (step.table is None) == (step.prefix is None):
        b.problem(lf.doc, path, "give exactly one of 'table' or 'prefix'")
        return True
    written = {t.location: t.ref for st in lf.spec.steps for t in b.written_tables(lf, st)}
    if step.table is not None:
        ref = b.ref_at(lf, path + ("table",), step.table)
        if ref is None:
            return True
        location = b.tables[ref].location
        anchor = path + ("table",)
    else:
        anchor = path + ("prefix",)
        rendered = _render_prefix(b, lf, anchor, step.prefix)  # type: ignore[arg-type]
        if rendered is None:
            return True
        location = rendered
    if location not in written:
        b.problem(
            lf.doc,
            anchor,
            f"purge target {location} is not the location of a table this layer writes; "
            "purge only your own outputs, never inputs or another layer's tables",
        )
        return True
    plan.location = location
    plan.writes = [written[location]]
    return True


def _render_prefix(b: Any, lf: LayerFile, anchor: tuple, prefix: str) -> str | None:
    import jinja2

    from bakery.lambdas import s3uri
    from bakery.sql import render_text

    try:
        rendered = render_text(prefix, b.context)
    except jinja2.TemplateError as exc:
        b.problem(lf.doc, anchor, f"prefix template: {exc}")
        return None
    try:
        inside = s3uri.split(rendered)[1].strip("/")
    except ValueError:
        inside = ""
    if not inside:
        b.problem(
            lf.doc, anchor, f"{rendered!r} is a bucket root or not s3://; refusing to purge it"
        )
        return None
    return rendered if rendered.endswith("/") else rendered + "/"


KIND = Kind(
    "purge_prefix",
    PurgePrefix,
    build,
    empties=True,
    maintains=True,
    summary="empties a table's location",
)
