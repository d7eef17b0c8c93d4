"""The publish plan (bakery.planning.publish_plan): what a layer stages, which checks
guard its publish, and the one publish point; validate refuses an order it cannot honour."""

from __future__ import annotations

from bakery.planning.publish_plan import publish_plan

M = "layers/mini.yaml"
EXPORT = """\
  - type: export_by_key
    id: mini_export
    table: mini_out
    key: postcode
    destination: s3://pollingstations.private.data/mini/{{ env }}/by_postcode/
    columns: [uprn]
"""
LATE_WRITE = """\
  - type: athena_query
    id: late
    sql: SELECT uprn, postcode FROM {{ ref('addressbase.addressbase_partitioned') }}
    into: mini_out
"""


def test_every_written_table_and_export_is_staged_and_published_last(project):
    plan = project.plan()
    pp = publish_plan(plan.layer("current_elections"))
    # the Lambda's table too, not only the query's
    assert "current_elections.current_ballots" in pp.table_refs
    assert "current_elections.current_ballots_joined_to_address_base" in pp.table_refs
    (export,) = pp.exports
    assert export.step == "current_elections.export_outcodes"
    assert export.delete_stale is True
    layer = plan.layer("current_elections")
    checks = [s.qualified_id for s in layer.walk() if s.kind == "check"]
    assert pp.guards == tuple(checks) and checks
    assert pp.after == layer.steps[-1].id == "export_outcodes"


def test_a_write_after_an_export_is_refused_at_its_line(project):
    project.write("layers/mini.yaml", project_text() + EXPORT + LATE_WRITE)
    (problem,) = [p for p in project.problems() if "late" in p]
    line = (project_text() + EXPORT).count("\n") + 1
    assert problem.startswith(f"{M}:{line}:5: steps[4]: step late writes mini.mini_out after ")
    assert "export mini_export read it" in problem and "move late before mini_export" in problem
    assert "\n" not in problem


def test_writes_before_the_export_are_fine(project):
    project.write("layers/mini.yaml", project_text() + EXPORT)
    assert project.problems() == []


def test_overlapping_export_destinations_are_refused(project):
    second = EXPORT.replace("mini_export", "mini_export_2").replace(
        "by_postcode/", "by_postcode/inner/"
    )
    project.write("layers/mini.yaml", project_text() + EXPORT + second)
    (problem,) = [p for p in project.problems() if "overlaps" in p]
    assert "steps[4]: export mini_export_2 writes under" in problem


def project_text() -> str:
    from tests.spec.conftest import MINI

    return MINI
