"""current_elections' ballot guards (issue 19, item 3) on AWS: not_blank and the areal
valid_geometry compile to check states before anything is published, with Athena SQL
that accepts Trino's 'ST_Polygon' / 'ST_MultiPolygon' type names and quotes the same
message as the local engine (tests/local/test_ballot_guards.py)."""

from __future__ import annotations

import sqlglot

from bakery.compile.asl import compile_layer
from tests.aws.test_aws_publish_guard import REPO
from tests.aws.test_guards_compile import main_path


def test_ballot_guards_compile_before_the_join_and_publish():
    from bakery.plan import build_plan
    from bakery.workspace import load_workspace

    plan = build_plan(load_workspace(REPO), "development")
    layer = plan.layer("current_elections")
    states = compile_layer(plan, layer).definition["States"]
    after = main_path(states, "ballots_named")
    assert after.index("ballots_named passed?") < after.index("ballots_valid_geometry")
    assert after.index("ballots_valid_geometry passed?") < after.index("publish")
    blank = states["ballots_named"]["Parameters"]["QueryString"]
    # the ballots the Lambda wrote are staged (publish plan): the checks read the staging,
    # in the SQL sqlglot generates again (so case aside)
    assert "current_ballots__staging" in blank
    assert "coalesce(trim(election_id), '') = ''" in blank.lower()
    geometry = states["ballots_valid_geometry"]["Parameters"]["QueryString"]
    assert "'ST_POLYGON', 'ST_MULTIPOLYGON'" in geometry
    assert "upper(cast(st_geometrytype(st_geometryfromtext(geometry)) as varchar))" in (
        geometry.lower()
    )
    for sql in (blank, geometry):
        sqlglot.parse_one(sql, read="athena")  # Athena SQL as written
    for check in ("ballots_named", "ballots_valid_geometry"):
        step = next(s for s in layer.steps if s.id == check)
        fail = states[f"{check} did not hold"]
        assert fail["Type"] == "Fail" and fail["Error"] == f"current_elections.{check} failed"
        cause = fail["CausePath"].replace("\\'", "'")
        assert f"check current_elections.{check} failed: {step.description}" in cause
