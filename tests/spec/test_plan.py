"""The plan: what every back-end reads. Resolution, order, fan-outs and runtime parameters."""

from __future__ import annotations

from pathlib import Path

# A layer shaped like the real current_boundary_changes: for_each over query rows.
FOR_EACH = (Path(__file__).parents[1] / "fixtures" / "boundary_changes.yaml").read_text()


def test_real_layers_resolve(project):
    plan = project.plan("staging")
    ab = plan.table("addressbase.addressbase_partitioned")
    assert ab.location == (
        "s3://pollingstations.private.data/addressbase/staging/addressbase_partitioned/"
    )
    assert (ab.bucket, ab.prefix) == (
        "pollingstations.private.data",
        "addressbase/staging/addressbase_partitioned/",
    )
    assert ab.written_by == ["partition_addressbase"]
    assert plan.table("addressbase.addressbase_cleaned_raw").external
    assert plan.tags == {"dc-product": "dc-data-baker", "dc-environment": "staging"}
    ce = plan.layer("current_elections")
    join = next(s for s in ce.steps if s.kind == "geo_join")
    assert join.over_values == [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    assert join.params == ["first_letter"] and join.sql.count("?") == 1
    assert join.reads == [
        "current_elections.current_ballots",
        "addressbase.addressbase_partitioned",
    ]
    assert [u.name for u in plan.upstream(["current_elections"])] == [
        "addressbase",
        "current_elections",
    ]


def test_refresh_follows_each_write_of_a_partitioned_table(project):
    ce = project.plan().layer("current_elections")
    kinds = [s.kind for s in ce.steps]
    assert kinds.index("refresh_partitions") == kinds.index("geo_join") + 1
    refresh = ce.steps[kinds.index("refresh_partitions")]
    assert refresh.sql == "MSCK REPAIR TABLE dc_data_baker.current_ballots_joined_to_address_base"


def test_for_each_over_query_rows_with_runtime_parameters(project):
    project.write("layers/boundary_changes.yaml", FOR_EACH)
    layer = project.plan().layer("boundary_changes")
    assert layer.depends_on == ["addressbase"]  # inferred from the tables it reads
    loop = next(s for s in layer.steps if s.kind == "for_each")
    assert loop.over_params == ["review", "division_type"]
    assert loop.max_concurrency == 5
    child, check = loop.children
    assert check.kind == "check" and check.params == ["review"]
    assert child.params == ["review", "division_type"]
    assert "?" in child.sql and "{{" not in child.sql
    assert [s.kind for s in layer.steps] == [
        "purge_prefix",
        "for_each",
        "refresh_partitions",
        "for_each",
    ]
    letters = layer.steps[3]
    assert (letters.over_values, letters.over_params) == (["A", "B", "C"], ["letter"])


def test_unknown_runtime_parameter(project):
    project.write(
        "layers/boundary_changes.yaml",
        FOR_EACH.replace("param('division_type')", "param('division')"),
    )
    assert project.problems() == [
        "layers/boundary_changes.yaml:26:9: steps[2].steps[0].sql: unknown runtime parameter "
        "'division'; available here: review, division_type"
    ]


def test_param_outside_a_fan_out(project):
    project.mini("SELECT uprn,", "SELECT {{ param('x') }} AS uprn,")
    assert project.problems() == [
        "layers/mini.yaml:16:5: steps[2].sql: unknown runtime parameter 'x'; param() is only "
        "available inside for_each or a fanned-out step"
    ]


def test_environment_variables_override_project_variables(project):
    project.edit(
        "bakery.yaml",
        "  development: {}",
        "  development:\n    variables: {addressbase_release: '2026-05-01'}",
    )
    dev = project.plan("development").table("addressbase.addressbase_cleaned_raw")
    prod = project.plan("production").table("addressbase.addressbase_cleaned_raw")
    assert "/2026-05-01/" in dev.location and "/2026-02-02/" in prod.location


def test_step_ids_are_unique_inside_for_each_too(project):
    project.write("layers/boundary_changes.yaml", FOR_EACH.replace("id: changes", "id: empty_out"))
    assert project.problems() == [
        "layers/boundary_changes.yaml:25:9: steps[2].steps[0].id: step id 'empty_out' is used "
        "twice in this layer"
    ]


def test_for_each_row_parameters_without_sql_checks(project):
    """`bakery run` builds the plan with check_sql=False: a for_each over query rows still
    gets its row parameters (they are part of the plan, not only a check)."""
    from bakery.plan import build_plan
    from bakery.workspace import load_workspace

    project.write("layers/boundary_changes.yaml", FOR_EACH)
    plan = build_plan(load_workspace(project.root), "development", check_sql=False)
    loop = next(s for s in plan.layer("boundary_changes").steps if s.kind == "for_each")
    assert loop.over_params == ["review", "division_type"]
    assert loop.children[0].params == ["review", "division_type"]
