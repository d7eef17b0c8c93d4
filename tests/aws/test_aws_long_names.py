"""The longest names the spec allows (60-char tables and step ids, 40-char layers) compile.

Step Functions refuses state names over 80 characters, and the compiler builds
state names from step ids and table names plus a suffix (`refresh_<table>`,
`<step> failed`, `<step> unload one value`, ...). Compile only: no CDK synth.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from aws_helpers import PROJECT

from bakery import aws_limits
from bakery.compile.asl import compile_layer
from bakery.plan import Plan, build_plan
from bakery.planning.names import execution_log_group_name, layer_stack_name, state_machine_name
from bakery.workspace import load_workspace

MAX_STATE_NAME = 80  # Step Functions' limit on state (and state machine) names


def name(prefix: str, length: int) -> str:
    return (prefix + "_" + "x" * length)[:length]


LAYER = name("long_layer", 40)
TABLE = name("partitioned_table", 60)
UNPARTITIONED = name("unpartitioned_table", 60)
BY_QUERY = name("written_by_query", 60)
IDS = {
    kind: name(kind, 60)
    for kind in (
        "purge",
        "purge_by_query",
        "purge_unpartitioned",
        "fan_out",
        "query",
        "check",
        "rows",
        "inner_query",
        "inner_check",
        "inner_lambda",
        "values",
        "values_check",
        "lambda",
        "export",
        "export_by_query",
    )
}


def layer_yaml() -> str:
    i = IDS
    columns = "[{name: outcode, type: string}, {name: uprn, type: string}]"
    return f"""\
name: {LAYER}
description: Every step type with the longest ids, into tables with the longest names.
singleton: true
steps:
  - type: glue_table
    name: {TABLE}
    location: s3://pollingstations.private.data/long/{{{{ env }}}}/a/
    format: parquet
    columns: [{{name: outcode, type: string}}, {{name: uprn, type: string}},
              {{name: ballot_ids, type: array<string>}}]
    partition_keys: [{{name: first_letter, type: string}}]
  - type: glue_table
    name: {BY_QUERY}
    location: s3://pollingstations.private.data/long/{{{{ env }}}}/b/
    format: parquet
    columns: {columns}
    partition_keys: [{{name: first_letter, type: string}}]
  - type: glue_table
    name: {UNPARTITIONED}
    location: s3://pollingstations.private.data/long/{{{{ env }}}}/c/
    format: parquet
    columns: {columns}
  - type: purge_prefix
    id: {i["purge"]}
    table: {TABLE}
  - type: purge_prefix
    id: {i["purge_by_query"]}
    table: {BY_QUERY}
  - type: purge_prefix
    id: {i["purge_unpartitioned"]}
    table: {UNPARTITIONED}
  - type: geo_join
    id: {i["fan_out"]}
    points: {{table: addressbase.addressbase_partitioned, x: longitude, y: latitude}}
    polygons: {{table: current_elections.current_ballots, geometry: geometry, value: election_id}}
    output_column: ballot_ids
    into: {TABLE}
    fan_out: {{column: first_letter, values: [A, B]}}
  - type: athena_query
    id: {i["query"]}
    sql: >-
      SELECT outcode, uprn, first_letter FROM {{{{ ref('addressbase.addressbase_partitioned') }}}}
    into: {BY_QUERY}
  - type: check
    id: {i["check"]}
    check: {{kind: one_distinct, table: {TABLE}, column: outcode}}
  - type: for_each
    id: {i["rows"]}
    over:
      sql: >-
        SELECT DISTINCT outcode AS review FROM {{{{ ref('addressbase.addressbase_partitioned') }}}}
    steps:
      - type: athena_query
        id: {i["inner_query"]}
        sql: >-
          SELECT outcode, uprn FROM {{{{ ref('addressbase.addressbase_partitioned') }}}}
          WHERE outcode = {{{{ param('review') }}}}
        into: {UNPARTITIONED}
      - type: check
        id: {i["inner_check"]}
        check:
          kind: no_rows
          sql: >-
            SELECT uprn FROM {{{{ ref('{UNPARTITIONED}') }}}}
            WHERE outcode = {{{{ param('review') }}}} AND uprn = ''
      - type: lambda
        id: {i["inner_lambda"]}
        handler: bakery.lambdas.purge.handler
  - type: for_each
    id: {i["values"]}
    as: letter
    over: {{values: [A, B]}}
    steps:
      - type: check
        id: {i["values_check"]}
        check:
          kind: no_rows
          sql: >-
            SELECT uprn FROM {{{{ ref('{TABLE}') }}}} WHERE first_letter = {{{{ param('letter') }}}}
  - type: lambda
    id: {i["lambda"]}
    handler: bakery.lambdas.purge.handler
  - type: export_by_key
    id: {i["export"]}
    table: {TABLE}
    key: outcode
    destination: s3://pollingstations.private.data/long/{{{{ env }}}}/export_a/
    columns: [uprn]
    delete_stale: true
  - type: export_by_key
    id: {i["export_by_query"]}
    table: {BY_QUERY}
    key: outcode
    destination: s3://pollingstations.private.data/long/{{{{ env }}}}/export_b/
    columns: [uprn]
    delete_stale: true
"""


@pytest.fixture(scope="module")
def long_plan(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    root = tmp_path_factory.mktemp("long_names")
    shutil.copy(PROJECT / "bakery.yaml", root / "bakery.yaml")
    shutil.copytree(PROJECT / "layers", root / "layers")
    (root / "layers" / f"{LAYER}.yaml").write_text(layer_yaml())
    return build_plan(load_workspace(root), "development")


def every_state_name(states: dict[str, dict]) -> list[str]:
    names = []
    for state_name, state in states.items():
        names.append(state_name)
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            names += every_state_name(processor["States"])
    return names


def test_names_at_the_spec_limits_compile_within_80_characters(long_plan: Plan):
    assert len(LAYER) == 40 and len(TABLE) == len(BY_QUERY) == 60
    assert all(len(i) == 60 for i in IDS.values())
    layer = long_plan.layer(LAYER)
    definition = compile_layer(long_plan, layer).definition  # raises CompileError when too long
    names = every_state_name(definition["States"])
    # Every step type and the generated refresh_<table> steps are there.
    for step_id in [*IDS.values(), f"refresh_{TABLE}", f"refresh_{BY_QUERY}"]:
        assert any(n.startswith(step_id) for n in names), step_id
    too_long = [n for n in names if len(n) > MAX_STATE_NAME]
    assert not too_long, too_long


def test_state_machine_and_stack_names_stay_within_limits(long_plan: Plan):
    # A plan is built only when every name is within AWS's limits (bakery.aws_limits).
    for env in ("development", "staging", "production"):
        plan = build_plan(load_workspace(Path(long_plan.root)), env)
        assert len(state_machine_name(plan, LAYER)) <= aws_limits.STATE_MACHINE_NAME.maximum
        assert len(layer_stack_name(plan, LAYER)) <= aws_limits.STACK_NAME.maximum
        log_group = execution_log_group_name(plan, LAYER)
        assert len(log_group) <= aws_limits.LOG_GROUP_NAME.maximum


def test_trigger_queues_of_a_long_layer_name_are_refused_before_synth(long_plan: Plan):
    """Without resource_prefix a 40-character layer's stack is <project>-<layer>-<env>: 66
    characters in development, so its dead-letter queue's name would be 83."""
    from bakery.errors import SpecError

    root = Path(long_plan.root)
    path = root / "layers" / f"{LAYER}.yaml"
    text = path.read_text()
    try:
        path.write_text(text.replace("singleton: true\n", "triggers: {events: [x]}\n", 1))
        with pytest.raises(SpecError) as info:
            build_plan(load_workspace(root), "development")
    finally:
        path.write_text(text)
    (problem,) = info.value.problems
    queue = f"dc-data-baker-{LAYER.replace('_', '-')}-development-trigger-dlq.fifo"
    assert problem.message.startswith(
        f"SQS FIFO queue name '{queue}' is 83 characters, over AWS's limit of 80"
    )


def test_a_state_name_over_80_inside_a_map_is_a_compile_error(long_plan: Plan):
    """Beyond the spec's limits (here a 70-char inner step id), synth fails with one line."""
    import dataclasses

    from bakery.compile.asl import CompileError

    layer = long_plan.layer(LAYER)
    loop = next(s for s in layer.steps if s.id == IDS["values"])
    inner = dataclasses.replace(loop.children[0], id=name("values_check", 70))
    steps = [dataclasses.replace(loop, children=[inner]) if s is loop else s for s in layer.steps]
    with pytest.raises(CompileError, match="is longer than 80 characters"):
        compile_layer(long_plan, dataclasses.replace(layer, steps=steps))
