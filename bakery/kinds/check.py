"""check: an assertion that stops the run with a message when it does not hold.

A check's query returns rows only when the check fails. Each check kind is a model
here (its name joins CHECK_KINDS by itself), a built-in template
bakery/templates/check_<kind>.sql (except no_rows, whose query is the author's), a
branch in `builtin_check` and a wording in `check_description`; both back-ends then run
it like every other check, with the same message.
"""

from __future__ import annotations

import typing
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, Field

from bakery import hive_types
from bakery.kinds.base import LIVE_CATALOG
from bakery.kinds.registry import Kind
from bakery.spec_types import Identifier, StepBase, StepName, Strict, TableRef

if TYPE_CHECKING:
    from bakery.kinds.base import Builder, LayerFile, StepPlan


class SameSet(Strict):
    kind: Literal["same_set"]
    left: TableRef
    right: TableRef
    column: Identifier
    allow_empty: bool = Field(
        False,
        description="Pass when both sides hold no value. By default that fails: two empty "
        "sides are the same set only because there was nothing to compare.",
    )


class OneDistinct(Strict):
    kind: Literal["one_distinct"]
    table: TableRef
    column: Identifier


class NoRows(Strict):
    kind: Literal["no_rows"]
    query: str | None = None
    sql: str | None = None


# Input guards: checked with the layer's other checks, before anything is published.
class MinRows(Strict):
    kind: Literal["min_rows"]
    table: TableRef
    min: int = Field(1, ge=1, description="Fewest rows the table may hold (1: not empty).")


# Athena engine 3's geospatial functions are Trino's (bakery/data/athena_functions.txt):
# ST_IsValid and geometry_invalid_reason, but nothing that repairs a geometry (no
# ST_MakeValid; ST_Buffer(g, 0) drops parts of a self-intersecting polygon). So the
# same layer could not repair on AWS what DuckDB would repair locally.
REPAIR_REFUSED = (
    "'repair' cannot run on Athena (engine 3 has no ST_MakeValid or other function that "
    "repairs a geometry), so bakery refuses it rather than bake locally what AWS cannot; "
    "use 'fail' (the default) and fix the geometry where it is made"
)


def _no_repair(value: str) -> str:
    if value == "repair":
        raise ValueError(REPAIR_REFUSED)
    return value


class ValidGeometry(Strict):
    kind: Literal["valid_geometry"]
    table: TableRef
    column: Identifier = Field(description="WKT column; NULL and '' count as no geometry.")
    label: Identifier | None = Field(
        None, description="Column named in the message for the first invalid piece."
    )
    areal: bool | None = Field(
        None,
        description="Every non-empty piece must also be a POLYGON or MULTIPOLYGON: a POINT "
        "or LINESTRING passes ST_IsValid but would give its label to the points lying on "
        "it. Default: true when a geo_join of the layer takes its polygons from this "
        "table, else false.",
    )
    on_invalid: Annotated[Literal["fail", "repair"], AfterValidator(_no_repair)] = Field(
        "fail",
        description="fail: an invalid piece fails the run before publishing. repair "
        "(ST_MakeValid) is refused: Athena engine 3 cannot repair a geometry.",
    )


class NotBlank(Strict):
    """Input guard: no row has a NULL, empty or all-spaces value in `column`."""

    kind: Literal["not_blank"]
    table: TableRef
    column: Identifier = Field(description="A string column that identifies something.")
    label: Identifier | None = Field(
        None, description="Column named in the message for the first blank row."
    )


class PublishGuard(Strict):
    """Compare the new table with the published one before publishing it."""

    kind: Literal["publish_guard"]
    table: TableRef = Field(description="A table this layer writes with a query.")
    key: Identifier = Field(description="Column that identifies a row in both versions.")
    column: Identifier = Field(description="Column whose value must not be lost.")
    max_emptied_percent: float = Field(
        ge=0,
        le=100,
        description=(
            "Fail when more than this percentage of the published rows would lose their "
            "value (it becomes NULL or empty, or the row disappears)."
        ),
    )


CheckKind = SameSet | OneDistinct | NoRows | MinRows | ValidGeometry | NotBlank | PublishGuard
CHECK_KINDS = tuple(
    typing.get_args(model.model_fields["kind"].annotation)[0]
    for model in typing.get_args(CheckKind)
)


class Check(StepBase):
    """An assertion that stops the run with a message when it does not hold."""

    type: Literal["check"]
    id: StepName
    check: Annotated[CheckKind, Field(discriminator="kind")]


def check_description(check: CheckKind) -> str:
    """What a check asserts, in the words both back-ends quote when it fails."""
    if isinstance(check, PublishGuard):
        return (
            f"at most {_percent(check.max_emptied_percent)} % of the published rows of "
            f"{check.table} lose their {check.column}"
        )
    if isinstance(check, SameSet):
        same = "the same values" if check.allow_empty else "the same non-empty set of values"
        return f"{check.left}.{check.column} holds {same} as {check.right}.{check.column}"
    if isinstance(check, OneDistinct):
        return f"{check.table}.{check.column} holds exactly one distinct value"
    if isinstance(check, MinRows):
        return (
            f"{check.table} is not empty"
            if check.min == 1
            else f"{check.table} holds at least {check.min} rows"
        )
    if isinstance(check, ValidGeometry):
        what = "a valid polygon or multipolygon" if check.areal else "a valid geometry"
        return f"every {check.table}.{check.column} is {what} (ST_IsValid)"
    if isinstance(check, NotBlank):
        return f"no {check.table}.{check.column} is blank (NULL, empty or spaces)"
    return "expected the query to return no rows"


def _percent(value: float) -> str:
    return f"{value:g}"


def value_kind(column_type: str) -> str:
    """How the guards' templates test that a value is there (`has` in
    check_publish_guard.sql, check_export_vanished.sql): array, string or other."""
    if hive_types.is_array(column_type):
        return "array"
    return "string" if column_type == "string" else "other"


def build(
    b: Builder, lf: LayerFile, path: tuple, step: Check, plan: StepPlan, params: list[str]
) -> bool:
    check = step.check
    cpath = path + ("check",)
    if isinstance(check, PublishGuard):
        build_publish_guard(b, lf, path, step, check, plan)
        return True
    if isinstance(check, NoRows):
        out = b.render_sql(lf, cpath, query=check.query, sql=check.sql, params=params)
        if out is None:
            return True
        rendered, plan.template = out
        b.analyse_sql(lf, cpath + ("query" if check.query else "sql",), rendered, plan.template)
    else:
        if isinstance(check, ValidGeometry) and check.areal is None:
            check = check.model_copy(update={"areal": polygons_table(b, lf, check.table)})
        built = builtin_check(b, lf, cpath, check)
        if built is None:
            return True
        builtin, extra = built
        out = b.render_sql(lf, cpath, builtin=builtin, extra=extra)
        if out is None:
            return True
        rendered = out[0]
        b.analyse_sql(lf, cpath, rendered, None)
    plan.sql, plan.params, plan.reads = rendered.sql, rendered.params, rendered.reads
    # Both back-ends quote this when the check fails, so they say the same thing.
    plan.description = step.description or check_description(check)
    return True


def builtin_check(
    b: Builder, lf: LayerFile, cpath: tuple, check: CheckKind
) -> tuple[str, dict[str, Any]] | None:
    """The built-in template of a check kind (bakery/templates/check_<kind>.sql) and
    the values it is rendered with; None when a table or column does not resolve."""
    if isinstance(check, SameSet):
        left = b.ref_at(lf, cpath + ("left",), check.left)
        right = b.ref_at(lf, cpath + ("right",), check.right)
        ok = b.column_of(lf, cpath + ("column",), left, check.column)
        ok = b.column_of(lf, cpath + ("column",), right, check.column) and ok
        return (
            (
                "check_same_set.sql",
                {
                    "left": left,
                    "right": right,
                    "column": check.column,
                    "allow_empty": check.allow_empty,
                },
            )
            if ok
            else None
        )
    table = b.ref_at(lf, cpath + ("table",), check.table)  # type: ignore[union-attr]
    if table is None:
        return None
    extra: dict[str, Any] = {"table": table}
    if isinstance(check, OneDistinct):
        if not b.column_of(lf, cpath + ("column",), table, check.column):
            return None
        return "check_one_distinct.sql", {**extra, "column": check.column}
    if isinstance(check, MinRows):
        return "check_min_rows.sql", {**extra, "min": check.min}
    if isinstance(check, ValidGeometry):
        ok = b.column_of(lf, cpath + ("column",), table, check.column)
        if check.label:
            ok = b.column_of(lf, cpath + ("label",), table, check.label) and ok
        if not ok:
            return None
        return "check_valid_geometry.sql", {
            **extra,
            "column": check.column,
            "label": check.label,
            "areal": check.areal,
        }
    if isinstance(check, NotBlank):
        ok = b.column_of(lf, cpath + ("column",), table, check.column)
        if check.label:
            ok = b.column_of(lf, cpath + ("label",), table, check.label) and ok
        if not ok:
            return None
        return "check_not_blank.sql", {**extra, "column": check.column, "label": check.label}
    return None


def polygons_table(b: Builder, lf: LayerFile, table: str) -> bool:
    """True when a geo_join of this layer takes its polygons from `table`."""
    try:
        ref = b.resolve(lf.spec.name, table)
    except LookupError:
        return False
    for st in lf.spec.steps:
        polygons = getattr(getattr(st, "polygons", None), "table", None)
        if st.type == "geo_join" and polygons:
            try:
                if b.resolve(lf.spec.name, polygons) == ref:
                    return True
            except LookupError:
                continue
    return False


def build_publish_guard(
    b: Builder, lf: LayerFile, path: tuple, step: Check, guard: PublishGuard, plan: StepPlan
) -> None:
    """The new (staged) table against the published one, before the layer publishes.

    The published table is read through the catalog (`awsdatacatalog.db.table`), which
    the AWS staging rewrite leaves alone and the local engine maps to the live files.
    """
    cpath = path + ("check",)
    exports = [i for i, st in enumerate(lf.spec.steps) if st.type == "export_by_key"]
    if len(path) != 2 or (exports and path[1] > exports[0]):
        b.problem(
            lf.doc,
            cpath + ("kind",),
            "a publish_guard runs before the layer publishes: put it at the top level, "
            "before the first export_by_key",
        )
        return
    table = b.ref_at(lf, cpath + ("table",), guard.table)
    if table is None:
        return
    writers = {t.ref for st in lf.spec.steps for t in b.written_tables(lf, st, through_query=True)}
    if table not in writers:
        b.problem(
            lf.doc,
            cpath + ("table",),
            f"{table!r} is not written by a query of this layer; a publish_guard compares "
            "a table the layer rebuilds with its published version",
        )
        return
    ok = b.column_of(lf, cpath + ("key",), table, guard.key)
    if not (b.column_of(lf, cpath + ("column",), table, guard.column) and ok):
        return
    column_type = next(c.type for c in b.tables[table].all_columns if c.name == guard.column)
    target = b.tables[table]
    extra = {
        "table": table,
        "table_name": target.name,
        "published_table": f"{LIVE_CATALOG}.{target.glue_name}",
        "key": guard.key,
        "column": guard.column,
        "kind": value_kind(column_type),
        "max_percent": guard.max_emptied_percent,
        "max_percent_text": _percent(guard.max_emptied_percent),
    }
    out = b.render_sql(lf, cpath, builtin="check_publish_guard.sql", extra=extra)
    if out is None:
        return
    rendered = out[0]
    b.analyse_sql(lf, cpath, rendered, None)
    plan.sql, plan.params, plan.reads = rendered.sql, rendered.params, rendered.reads
    plan.message_column = "failure_message"
    plan.description = step.description or check_description(guard)


KIND = Kind("check", Check, build, in_for_each=True, summary="stops the run if it fails")
