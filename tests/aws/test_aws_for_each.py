"""for_each (over query rows and over values) compiled to Map states, validated and synthesized."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from aws_helpers import PROJECT, REPO, asl_validate

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
    shutil.copy(PROJECT / "bakery.yaml", root / "bakery.yaml")
    shutil.copytree(PROJECT / "layers", root / "layers")
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
    assert guard["Choices"][0]["Variable"] == "$.page.NextToken"
    header = states[guard["Default"]]
    assert header["Parameters"] == {"rows.$": "$.page.ResultSet.Rows[1:]"}
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
        # Built in staging, published after the layer's checks.
        "INSERT INTO dc_data_baker.boundary_changes_out__staging\nSELECT uprn, ? AS review"
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


def _path(data, path: str):
    """Just enough JSONPath for the row-count states: $.a.b, [n], [n:]."""
    out = data
    for name, index, start in re.findall(r"\.(\w+)|\[(\d+)\]|\[(\d+):\]", path[1:]):
        if name:
            out = out[name]
        elif index:
            out = out[int(index)]
        else:
            out = out[int(start) :]
    return out


def _present(data, path: str) -> bool:
    try:
        _path(data, path)
    except (KeyError, IndexError):
        return False
    return True


def _run_rows_states(states: dict, start: str, pages: dict) -> tuple[str, dict]:
    """Walk the states from the GetQueryResults task to the Map (or a Fail), Athena stubbed."""
    data: dict = {"input": {}, "rows": {"id": "q1"}}
    name = start
    while states[name]["Type"] not in ("Map", "Fail"):
        state = states[name]
        if state["Type"] == "Task":
            params = {
                k.removesuffix(".$"): _path(data, v) if k.endswith(".$") else v
                for k, v in state["Parameters"].items()
            }
            result = pages[params.get("NextToken")](params["MaxResults"])
            if "ResultSelector" in state:
                result = {k[:-2]: _path(result, v) for k, v in state["ResultSelector"].items()}
            data[state["ResultPath"][2:]] = result
            name = state["Next"]
        elif state["Type"] == "Choice":
            name = state["Default"]
            for choice in state["Choices"]:
                if _present(data, choice["Variable"]) == choice["IsPresent"]:
                    name = choice["Next"]
                    break
        else:  # Pass
            value = {k[:-2]: _path(data, v) for k, v in state["Parameters"].items()}
            data[state["ResultPath"][2:]] = value
            name = state["Next"]
    return name, data


def _athena(data_rows: int, token_on_full_page: bool = True) -> dict:
    """GetQueryResults pages over a header and `data_rows` rows (1000 rows a page at most)."""
    rows = [{"Data": [{"VarCharValue": "h"}]}] + [
        {"Data": [{"VarCharValue": str(i)}]} for i in range(data_rows)
    ]

    def page(offset: int):
        def get(max_results: int) -> dict:
            out: dict = {"ResultSet": {"Rows": rows[offset : offset + max_results]}}
            full = offset + max_results < len(rows) or (
                token_on_full_page and offset + max_results == len(rows)
            )
            if full:
                out["NextToken"] = f"t{offset + max_results}"
            return out

        return get

    return {None: page(0), "t1000": page(1000)}


@pytest.mark.parametrize(
    ("data_rows", "token_on_full_page", "fails"),
    [
        (0, True, False),
        (998, True, False),
        (999, False, False),
        (999, True, False),  # a full page may carry a NextToken to an empty page
        (1000, True, True),
        (1500, True, True),
    ],
)
def test_rows_map_row_count_boundary(
    boundary_plan: Plan, data_rows: int, token_on_full_page: bool, fails: bool
):
    states = compile_layer(boundary_plan, boundary_plan.layer("boundary_changes")).definition[
        "States"
    ]
    end, data = _run_rows_states(states, "per_review rows", _athena(data_rows, token_on_full_page))
    if fails:
        assert end == "per_review too many rows"
        assert "more than 999" in states[end]["Cause"]
    else:
        assert end == "per_review"
        items = _path(data, states[end]["ItemsPath"])
        assert len(items) == data_rows  # the header dropped, every data row kept
