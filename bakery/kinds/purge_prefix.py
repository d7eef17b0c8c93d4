"""purge_prefix: empty the location of a table this layer writes."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from bakery.kinds.base import StepPlan
from bakery.kinds.registry import Kind
from bakery.spec_types import StepBase, StepName, TableRef

if TYPE_CHECKING:
    from bakery.kinds.base import Builder, LayerFile


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


def implied(b: Builder, lf: LayerFile) -> tuple[list[StepPlan], dict[str, str]]:
    """The purges a layer need not write: one per table a query of the layer writes and
    no purge_prefix step of it empties.

    They open the layer, in the order its tables are declared (where hand-written purges
    stood), with the id the table's `purge_step` gives, else `empty_<table>`. Returns them
    and, for a clearer message on a clash, their ids mapped to the table's name.
    """
    layer = lf.spec.name
    by_query = {t.ref for st in lf.spec.steps for t in b.written_tables(lf, st, through_query=True)}
    explicit = _explicit_targets(b, lf)
    purges: list[StepPlan] = []
    ids: dict[str, str] = {}
    for i, st in enumerate(lf.spec.steps):
        if st.type != "glue_table":
            continue
        ref = f"{layer}.{st.name}"
        table = b.tables.get(ref)
        if table is None or table.layer != layer:
            continue
        if ref not in by_query or ref in explicit:
            if st.purge_step is not None:
                why = "a purge_prefix step empties it" if ref in explicit else "no query writes it"
                b.problem(
                    lf.doc,
                    ("steps", i, "purge_step"),
                    f"purge_step names the purge the plan adds before a query writes this "
                    f"table, and {why}: remove purge_step",
                )
            continue
        step_id = st.purge_step or f"empty_{st.name}"[:60]
        ids[step_id] = st.name
        purges.append(
            StepPlan(layer=layer, id=step_id, kind=KIND.name, spec=None, location=table.location)
        )
        purges[-1].writes = [ref]
    return purges, ids


def _explicit_targets(b: Any, lf: LayerFile) -> set[str]:
    """The tables the layer's own purge_prefix steps empty (unresolved ones are left to
    the steps' builders to report)."""
    import jinja2

    from bakery.sql import render_text

    by_location = {t.location: t.ref for t in b.tables.values() if t.layer == lf.spec.name}
    out: set[str] = set()
    for st in lf.spec.steps:
        if not isinstance(st, PurgePrefix):
            continue
        if st.table is not None:
            with contextlib.suppress(LookupError):
                out.add(b.resolve(lf.spec.name, st.table))
        elif st.prefix is not None:
            try:
                rendered = render_text(st.prefix, b.context)
            except jinja2.TemplateError:
                continue
            rendered = rendered if rendered.endswith("/") else rendered + "/"
            if rendered in by_location:
                out.add(by_location[rendered])
    return out
