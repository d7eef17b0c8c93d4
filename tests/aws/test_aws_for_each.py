"""for_each (over query rows and over values) compiled to Map states, validated and synthesized."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from aws_helpers import PROJECT, REPO, asl_validate

from bakery import spec
from bakery.compile.asl import ATHENA_SYNC, CompileError, compile_layer, unload_options
from bakery.kinds.lambda_ import LambdaStepPlan
from bakery.plan import Plan, build_plan
from bakery.workspace import load_workspace

BOUNDARY_CHANGES = (REPO / "tests" / "fixtures" / "boundary_changes.yaml").read_text()


@pytest.fixture(scope="module")
def boundary_plan(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    root = tmp_path_factory.mktemp("proj")
    shutil.copy(PROJECT / "bakery.yaml", root / "bakery.yaml")
    shutil.copytree(PROJECT / "layers", root / "layers")
    (root / "layers" / "boundary_changes.yaml").write_text(BOUNDARY_CHANGES)
    return build_plan(load_workspace(root), "development")


def test_for_each_over_query_rows(boundary_plan: Plan):
    d = compile_layer(boundary_plan, boundary_plan.layer("boundary_changes")).definition
    states = d["States"]
    query = states["per_review rows query"]
    assert query["Resource"] == ATHENA_SYNC
    text = query["Parameters"]["QueryString"]
    # The row query, wrapped: every value as an SQL literal and as JSON, never NULL, in
    # base64 (the CSV ItemReader would drop backslashes).
    assert "SELECT DISTINCT outcode AS review" in text
    assert "AS bakery_rows (v0, v1)" in text
    assert (
        "to_base64(to_utf8(CASE WHEN v0 IS NULL THEN 'NULL' ELSE '''' || replace(CAST(v0 AS "
        "varchar), '''', '''''') || '''' END)) AS \"review_sql\""
    ) in text
    assert 'to_base64(to_utf8(json_format(CAST(ARRAY[v1] AS JSON)))) AS "division_type_json"' in (
        text
    )
    loop = states[query["Next"]]
    assert loop["Type"] == "Map" and loop["MaxConcurrency"] == 5
    assert loop["ItemProcessor"]["ProcessorConfig"] == {
        "Mode": "DISTRIBUTED",
        "ExecutionType": "STANDARD",
    }
    # The items are read from the query's result file, never held in the state.
    assert loop["ItemReader"] == {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
        "Parameters": {
            "Bucket": "dc-data-baker-results-bucket",
            "Key.$": "States.Format('dc-data-baker-athena-results/{}.csv', $.rows.id)",
        },
    }
    assert "ItemsPath" not in loop
    assert loop["ResultPath"] is None
    assert loop["ResultWriter"]["Resource"] == "arn:aws:states:::s3:putObject"
    # Items carry the raw values (for Lambda children) and their SQL literals, decoded.
    unwrap = (
        "States.ArrayGetItem(States.StringToJson("
        "States.Base64Decode($$.Map.Item.Value.{}_json)), 0)"
    )
    assert loop["ItemSelector"] == {
        "review.$": unwrap.format("review"),
        "division_type.$": unwrap.format("division_type"),
        "sql_text": {
            "review.$": "States.Base64Decode($$.Map.Item.Value.review_sql)",
            "division_type.$": "States.Base64Decode($$.Map.Item.Value.division_type_sql)",
        },
    }
    body = loop["ItemProcessor"]["States"]
    changes = body[loop["ItemProcessor"]["StartAt"]]
    assert changes["Parameters"]["QueryString"].startswith(
        # Built in staging, published after the layer's checks.
        "INSERT INTO dc_data_baker.boundary_changes_out__staging\nSELECT uprn, outcode AS review"
    )
    assert changes["Parameters"]["ExecutionParameters.$"] == (
        "States.Array($.sql_text.review, $.sql_text.division_type)"
    )
    # An INSERT that may have run is not sent again: only a refused submission is.
    assert [r["ErrorEquals"] for r in changes["Retry"]] == [["Athena.TooManyRequestsException"]]
    check = body[changes["Next"]]
    assert check["Parameters"]["ExecutionParameters.$"] == "States.Array($.sql_text.review)"
    assert loop["Next"] == "refresh_boundary_changes_out"


def test_for_each_over_values(boundary_plan: Plan):
    d = compile_layer(boundary_plan, boundary_plan.layer("boundary_changes")).definition
    items = d["States"]["per_letter items"]["Result"]
    assert items == [{"letter": v, "sql_text": {"letter": f"'{v}'"}} for v in ("A", "B", "C")]
    loop = d["States"]["per_letter"]
    assert loop["MaxConcurrency"] == 2
    body = loop["ItemProcessor"]["States"]
    assert body["letter_present"]["Parameters"]["ExecutionParameters.$"] == (
        "States.Array($.sql_text.letter)"
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
                    LambdaStepPlan(
                        layer=layer,
                        id="tell",
                        kind="lambda",
                        spec=None,
                        handler="bakery.lambdas.x.handler",
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
    assert d["States"]["per_letter items"]["Result"][0] == {
        "letter": "A",
        "sql_text": {"letter": "'A'"},
    }
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
        {"letter": "O'Neil", "sql_text": {"letter": "'O''Neil'"}},
        {"letter": "B", "sql_text": {"letter": "'B'"}},
    ]
    body = d["States"]["per_letter"]["ItemProcessor"]["States"]
    assert body["letter_present"]["Parameters"]["ExecutionParameters.$"] == (
        "States.Array($.sql_text.letter)"
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
    # UNLOAD's TEXTFILE is not what a csv table reads back: validate refuses such a layer.
    for csv in (spec.Csv(delimiter="|"), spec.Csv(header=True)):
        csv_table = dataclasses.replace(table, format="csv", csv=csv)
        with pytest.raises(CompileError, match="a query writes parquet tables only"):
            unload_options(csv_table, [])
