"""Input guards and the unique_by check compile to Step Functions like any other check:
an Athena query, its results, a Choice, and a Fail state quoting the local message;
all of them before the publish states (fixture project tests/fixtures/guards)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bakery.compile.asl import compile_layer
from bakery.plan import Plan, build_plan
from bakery.workspace import load_workspace

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "guards"


@pytest.fixture(scope="module")
def guards_plan() -> Plan:
    return build_plan(load_workspace(FIXTURE), "development")


def main_path(states: dict, start: str) -> list[str]:
    """Top-level states in the order a successful run passes them (Default of Choices)."""
    order, name = [], start
    while name and name not in order:
        order.append(name)
        state = states[name]
        name = state.get("Next") or state.get("Default")
    return order


def test_guards_run_as_checks_before_publish(guards_plan: Plan):
    layer = guards_plan.layer("places")
    definition = compile_layer(guards_plan, layer).definition
    states = definition["States"]
    order = main_path(states, definition["StartAt"])
    publish = order.index("publish")
    for check in ("points_not_empty", "areas_valid", "by_key_unique"):
        assert order.index(check) < publish, check
        assert states[check]["Resource"].endswith("athena:startQueryExecution.sync")
        step = next(s for s in layer.steps if s.id == check)
        cause = states[f"{check} did not hold"]["CausePath"]
        assert f"check places.{check} failed: {step.description}" in cause
    assert [n for n in order if n.startswith("by_key") and "unique" not in n]
    # the export runs before the layer's one publish (bakery.planning.publish_plan)
    assert all(order.index(n) < publish for n in order if n.startswith("by_key "))
    # the unique_by check reads the staged table, over every partition at once
    sql = states["by_key_unique"]["Parameters"]["QueryString"]
    assert "guards.located__staging" in sql and "first_letter" not in sql
    geometry = states["areas_valid"]["Parameters"]["QueryString"]
    assert "NOT (ST_IsValid(ST_GeometryFromText(geometry))" in geometry
    assert "'ST_POLYGON', 'ST_MULTIPOLYGON'" in geometry  # areal: a geo_join's polygons
