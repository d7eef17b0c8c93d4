"""for_each (over query rows and over values) compiled to Map states, validated and synthesized."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from aws_helpers import REPO, asl_validate

from bakery import spec
from bakery.compile.asl import ATHENA_SYNC, CompileError, compile_layer, unload_options
from bakery.plan import Plan, StepPlan, build_plan
from bakery.workspace import load_workspace

# An item's raw value as a quoted SQL literal, built in ExecutionParameters.
QUOTED = "States.Format('\\'{{}}\\'', {})"

BOUNDARY_CHANGES = (REPO / "tests" / "fixtures" / "boundary_changes.yaml").read_text()


@pytest.fixture(scope="module")
def boundary_plan(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    root = tmp_path_factory.mktemp("proj")
    shutil.copy(REPO / "bakery.yaml", root / "bakery.yaml")
    shutil.copytree(REPO / "layers", root / "layers")
    (root / "layers" / "boundary_changes.yaml").write_text(BOUNDARY_CHANGES)
    return build_plan(load_workspace(root), "development")


def test_for_each_over_query_rows(boundary_plan: Plan):
    d = compile_layer(boundary_plan, boundary_plan.layer("boundary_changes")).definition
    states = d["States"]
    query = states["per_review rows query"]
    assert query["Resource"] == ATHENA_SYNC
    assert query["Parameters"]["QueryString"].startswith("SELECT DISTINCT outcode AS review")
    rows = states[query["Next"]]
    assert rows["Resource"] == "arn:aws:states:::athena:getQueryResults"
    assert rows["Parameters"]["MaxResults"] == 1000
    guard = states[rows["Next"]]
    assert guard["Choices"][0]["NumericGreaterThan"] == 999
    assert states[guard["Choices"][0]["Next"]]["Type"] == "Fail"
    header = states[guard["Default"]]
    assert header["Parameters"] == {"rows.$": "$.rows.rows[1:]"}
    loop = states[header["Next"]]
    assert loop["Type"] == "Map" and loop["MaxConcurrency"] == 5
    # Items carry the raw column values; only Athena parameters quote them.
    assert loop["ItemSelector"] == {
        "review.$": "$$.Map.Item.Value.Data[0].VarCharValue",
        "division_type.$": "$$.Map.Item.Value.Data[1].VarCharValue",
    }
    body = loop["ItemProcessor"]["States"]
    # A value with a quote cannot be an Athena literal: the iteration fails before any SQL.
    guard = body[loop["ItemProcessor"]["StartAt"]]
    assert guard["Type"] == "Choice"
    assert guard["Choices"][0]["Or"] == [
        {"Variable": "$.review", "StringMatches": "*'*"},
        {"Variable": "$.division_type", "StringMatches": "*'*"},
    ]
    assert body[guard["Choices"][0]["Next"]]["Type"] == "Fail"
    changes = body[guard["Default"]]
    assert changes["Parameters"]["QueryString"].startswith(
        "INSERT INTO dc_data_baker.boundary_changes_out\nSELECT uprn, ? AS review"
    )
    assert changes["Parameters"]["ExecutionParameters.$"] == (
        f"States.Array({QUOTED.format('$.review')}, {QUOTED.format('$.review')}, "
        f"{QUOTED.format('$.division_type')})"
    )
    check = body[changes["Next"]]
    assert check["Parameters"]["ExecutionParameters.$"] == (
        f"States.Array({QUOTED.format('$.review')})"
    )
    assert loop["Next"] == "refresh_boundary_changes_out"


def test_for_each_over_values(boundary_plan: Plan):
    d = compile_layer(boundary_plan, boundary_plan.layer("boundary_changes")).definition
    items = d["States"]["per_letter items"]["Result"]
    assert items == [{"letter": "A"}, {"letter": "B"}, {"letter": "C"}]
    loop = d["States"]["per_letter"]
    assert loop["MaxConcurrency"] == 2
    body = loop["ItemProcessor"]["States"]
    assert body["letter_present"]["Parameters"]["ExecutionParameters.$"] == (
        f"States.Array({QUOTED.format('$.letter')})"
    )
    assert body["letter_present passed?"]["Default"] == "letter_present held"


def _with_children(plan: Plan, layer: str, step_id: str, values=None, lambda_child=True) -> Plan:
    """The plan with a Lambda child (param `letter`) added to a for_each, and other values."""
    lp = plan.layer(layer)
    steps = []
    for s in lp.steps:
        if s.id == step_id:
            children = list(s.children)
            if lambda_child:
                children.append(
                    StepPlan(
                        layer=layer,
                        id="tell",
                        kind="lambda",
                        spec=SimpleNamespace(handler="bakery.lambdas.x.handler"),
                        params=list(s.over_params),
                    )
                )
            s = dataclasses.replace(
                s, children=children, over_values=values if values else s.over_values
            )
        steps.append(s)
    new_layer = dataclasses.replace(lp, steps=steps)
    return dataclasses.replace(plan, layers=[new_layer if x is lp else x for x in plan.layers])


def test_for_each_lambda_children_get_raw_values(boundary_plan: Plan):
    plan = _with_children(boundary_plan, "boundary_changes", "per_letter")
    layer = plan.layer("boundary_changes")
    d = compile_layer(plan, layer).definition
    assert d["States"]["per_letter items"]["Result"][0] == {"letter": "A"}
    body = d["States"]["per_letter"]["ItemProcessor"]["States"]
    assert body["tell"]["Parameters"]["Payload"]["letter.$"] == "$.letter"


def test_for_each_fixed_values_with_a_quote_are_escaped_at_synth(
    boundary_plan: Plan, tmp_path: Path
):
    plan = _with_children(
        boundary_plan, "boundary_changes", "per_letter", values=["O'Neil", "B"], lambda_child=True
    )
    d = compile_layer(plan, plan.layer("boundary_changes")).definition
    assert d["States"]["per_letter items"]["Result"] == [
        {"letter": "O'Neil", "sql_text": {"letter": "O''Neil"}},
        {"letter": "B", "sql_text": {"letter": "B"}},
    ]
    body = d["States"]["per_letter"]["ItemProcessor"]["States"]
    assert body["letter_present"]["Parameters"]["ExecutionParameters.$"] == (
        f"States.Array({QUOTED.format('$.sql_text.letter')})"
    )
    assert body["tell"]["Parameters"]["Payload"]["letter.$"] == "$.letter"  # raw
    path = tmp_path / "quoted.asl.json"
    path.write_text(compile_layer(plan, plan.layer("boundary_changes")).to_json())
    result = asl_validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_for_each_definitions_are_valid_asl(boundary_plan: Plan, tmp_path: Path):
    path = tmp_path / "boundary_changes.asl.json"
    path.write_text(compile_layer(boundary_plan, boundary_plan.layer("boundary_changes")).to_json())
    result = asl_validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_for_each_layer_synthesizes_cdk_nag_clean(boundary_plan: Plan, tmp_path: Path):
    from bakery.constructs import build_app

    app, _core, layers = build_app(
        boundary_plan, outdir=str(tmp_path / "out"), build_dir=tmp_path / "build"
    )
    assembly = app.synth()  # raises on any cdk-nag error
    stack = layers["boundary_changes"]
    template = json.loads(
        Path(assembly.get_stack_by_name(stack.stack_name).template_full_path).read_text()
    )
    policies = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Policy"]
    text = json.dumps(policies)
    assert "boundary_changes/development/out/*" in text
    assert "glue:BatchCreatePartition" in text


def test_unload_options_follow_the_table_format(boundary_plan: Plan):
    table = boundary_plan.table("boundary_changes.boundary_changes_out")
    assert unload_options(table, ["division_type"]) == (
        "format = 'PARQUET', compression = 'SNAPPY', partitioned_by = ARRAY['division_type']"
    )
    csv_plain = dataclasses.replace(table, format="csv", csv=spec.Csv(delimiter="|"))
    assert unload_options(csv_plain, []) == "format = 'TEXTFILE', field_delimiter = '|'"
    csv_header = dataclasses.replace(table, format="csv", csv=spec.Csv(header=True))
    with pytest.raises(CompileError, match="UNLOAD cannot write"):
        unload_options(csv_header, [])
