"""geo_join: every point with the sorted distinct list of polygon values containing it.

Its meaning is the built-in template bakery/templates/geo_join.sql, which the plan
renders here; the local engine runs its own DuckDB query for speed, tested against it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from bakery import hive_types
from bakery.kinds.registry import Kind
from bakery.spec_types import Identifier, StepBase, StepName, Strict, TableRef, Values

if TYPE_CHECKING:
    from bakery.kinds.base import Builder, LayerFile, StepPlan


class Points(Strict):
    table: TableRef
    x: Identifier = Field(description="Longitude column.")
    y: Identifier = Field(description="Latitude column.")


class Polygons(Strict):
    table: TableRef
    geometry: Identifier = Field(description="WKT column (lon/lat).")
    value: Identifier = Field(description="Column collected per point.")


class FanOut(Strict):
    column: Identifier = Field(description="Partition column of the points table.")
    values: Values | None = Field(
        None,
        min_length=1,
        description="A list or a range (A..Z); by default the values the partition key declares.",
    )
    max_concurrency: int = Field(26, ge=1, le=100)


class GeoJoin(StepBase):
    """Every point with the sorted distinct list of polygon values containing it."""

    type: Literal["geo_join"]
    id: StepName
    points: Points
    polygons: Polygons
    output_column: Identifier = Field(description="Array column of collected values.")
    into: TableRef
    fan_out: FanOut | None = None


def build(
    b: Builder, lf: LayerFile, path: tuple, step: GeoJoin, plan: StepPlan, params: list[str]
) -> bool:
    points = b.ref_at(lf, path + ("points", "table"), step.points.table)
    polygons = b.ref_at(lf, path + ("polygons", "table"), step.polygons.table)
    into = b.ref_at(lf, path + ("into",), step.into)
    if into and b.tables[into].layer != lf.spec.name:
        b.problem(lf.doc, path + ("into",), "a layer writes only the tables it declares")
        return True
    ok = all(
        [
            b.column_of(lf, path + ("points", "x"), points, step.points.x),
            b.column_of(lf, path + ("points", "y"), points, step.points.y),
            b.column_of(lf, path + ("polygons", "geometry"), polygons, step.polygons.geometry),
            b.column_of(lf, path + ("polygons", "value"), polygons, step.polygons.value),
        ]
    )
    if not (ok and points and polygons and into):
        return True
    target = b.tables[into]
    out_col = next((c for c in target.columns if c.name == step.output_column), None)
    if out_col is None or not hive_types.is_array(out_col.type):
        b.problem(
            lf.doc,
            path + ("output_column",),
            f"table {into!r} needs an array column {step.output_column!r} for the values",
        )
        return True
    point_cols = {c.name for c in b.tables[points].all_columns}
    carried = [c.name for c in target.columns if c.name != step.output_column]
    missing = [c for c in carried + [k.name for k in target.partition_keys] if c not in point_cols]
    if missing:
        b.problem(
            lf.doc,
            path + ("into",),
            f"columns {', '.join(missing)} of {into!r} are not in points table {points!r}",
        )
        return True
    fan_out = None
    if step.fan_out:
        fan_out = step.fan_out.column
        keys = [k.name for k in b.tables[points].partition_keys]
        if fan_out not in keys:
            b.problem(
                lf.doc,
                path + ("fan_out", "column"),
                f"fan_out column {fan_out!r} must be a partition key of {points!r} "
                f"({', '.join(keys) or 'it has none'})",
            )
            return True
        values = step.fan_out.values
        if values is None:
            key = next(k for k in b.tables[points].partition_keys if k.name == fan_out)
            values = key.values
        if values is None:
            b.problem(
                lf.doc,
                path + ("fan_out",),
                f"fan_out over {fan_out!r} needs its values: give `values` here (a list or a "
                f"range such as A..Z), or declare them on the partition key {fan_out!r} of "
                f"{points!r}",
            )
            return True
        plan.over_values = list(values)
        plan.over_params = [fan_out]
        plan.max_concurrency = step.fan_out.max_concurrency
    extra = {
        "points_table": points,
        "polygons_table": polygons,
        "x": step.points.x,
        "y": step.points.y,
        "geometry": step.polygons.geometry,
        "value": step.polygons.value,
        "output_column": step.output_column,
        "carried": carried,
        "partition_keys": [k.name for k in target.partition_keys],
        "fan_out": fan_out,
    }
    out = b.render_sql(
        lf, path, builtin="geo_join.sql", extra=extra, params=[fan_out] if fan_out else []
    )
    if out is None:
        return True
    rendered = out[0]
    b.check_output(lf, path, b.analyse_sql(lf, path, rendered, None), into)
    plan.sql, plan.params, plan.reads, plan.writes = (
        rendered.sql,
        rendered.params,
        rendered.reads,
        [into],
    )
    return True


KIND = Kind(
    "geo_join",
    GeoJoin,
    build,
    writes_through_query=True,
    writes=lambda step: [step.into],
    summary="points with the polygons containing them",
)
