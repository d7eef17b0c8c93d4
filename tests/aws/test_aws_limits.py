"""`bakery synth --env production` and `--env shadow` stay within AWS's limits.

For every queue, function, role, log group and state machine: a name the template gives is
within its limit, and so is the longest name CloudFormation can make up for one it does not
name (bakery.aws_limits.GENERATED: <stack>-<logical id>-<suffix>, shortened or not). Every
role's inline policies together, sized as IAM counts them once CloudFormation has resolved
the template, stay under 10,240 characters; a layer whose grants would not fit gets customer
managed policies (bakery/constructs/policies.py). The pipe waits for its role's policy; the
state machines log under /aws/vendedlogs/states/; Athena's writes have the Glue and S3
actions Step Functions' own Athena policy has; every function with the AWS SDK for pandas
layer uses bakery.yaml's.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from aws_helpers import PROJECT, resources, synth_templates

from bakery import aws_limits
from bakery.plan import Plan, build_plan
from bakery.planning.names import dead_letter_queue_name, trigger_queue_name
from bakery.workspace import load_workspace

REPO = Path(__file__).resolve().parents[2]
ENVS = ("production", "shadow")
NAME_PROPERTY = {
    "AWS::SQS::Queue": "QueueName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
}


@pytest.fixture(scope="module")
def plans() -> dict[str, Plan]:
    ws = load_workspace(REPO)
    return {env: build_plan(ws, env) for env in ENVS}


@pytest.fixture(scope="module")
def templates(repo_templates) -> dict[str, dict[str, dict]]:
    return {env: repo_templates[env] for env in ENVS}


# ---------------------------------------------------------------- sizing a template's policies


def reference_length(stacks: dict[str, dict], stack: str):
    """Bounds of a Ref, Fn::GetAtt or Fn::ImportValue in `stack`'s template (the export's
    value sized in the stack that exports it)."""
    template = stacks[stack]

    def reference(value: dict) -> int:
        ((kind, arg),) = value.items()
        if kind == "Fn::ImportValue":
            for other, exporter in stacks.items():
                for output in exporter.get("Outputs", {}).values():
                    if output.get("Export", {}).get("Name") == arg:
                        length = aws_limits.intrinsic_length(
                            output["Value"], reference_length(stacks, other)
                        )
                        assert length is not None, output
                        return length
            raise AssertionError(f"no stack exports {arg}")
        logical, attribute = (arg, "Ref") if kind == "Ref" else arg
        key = (template["Resources"][logical]["Type"], attribute)
        assert key in aws_limits.REFERENCE_LENGTH, f"no bound for {key}"
        return aws_limits.REFERENCE_LENGTH[key]

    return reference


def document_length(stacks: dict[str, dict], stack: str, document: dict) -> int:
    reference = reference_length(stacks, stack)
    return aws_limits.json_length(document, lambda v: aws_limits.intrinsic_length(v, reference))


def policy_sizes(stacks: dict[str, dict]) -> tuple[dict[str, int], dict[str, int]]:
    """Characters of every role's inline policies together (their names included), and of
    every customer managed policy, by "stack/logical id"."""
    inline: Counter[str] = Counter()
    managed = {}
    for stack, template in stacks.items():
        for logical, role in resources(template, "AWS::IAM::Role").items():
            inline[f"{stack}/{logical}"] += sum(
                len(p["PolicyName"]) + document_length(stacks, stack, p["PolicyDocument"])
                for p in role["Properties"].get("Policies", [])
            )
        for policy in resources(template, "AWS::IAM::Policy").values():
            props = policy["Properties"]
            document = document_length(stacks, stack, props["PolicyDocument"])
            size = len(props["PolicyName"]) + document
            for role in props["Roles"]:
                inline[f"{stack}/{role['Ref']}"] += size
        for logical, policy in resources(template, "AWS::IAM::ManagedPolicy").items():
            doc = policy["Properties"]["PolicyDocument"]
            managed[f"{stack}/{logical}"] = document_length(stacks, stack, doc)
    return dict(inline), managed


def attached(template: dict, role: str) -> list[tuple[str, dict]]:
    """The policies (inline and managed) of the role `role` (its logical id) in `template`."""
    return [
        (logical, policy)
        for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
        for logical, policy in resources(template, kind).items()
        if {"Ref": role} in policy["Properties"].get("Roles", [])
    ]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


# ---------------------------------------------------------------- names


def test_every_physical_name_is_within_aws_limits(templates):
    for env, stacks in templates.items():
        checked: Counter[str] = Counter()
        too_long = []
        for stack, template in stacks.items():
            if len(stack) > aws_limits.STACK_NAME.maximum:
                too_long.append(f"stack {stack}: {len(stack)}")
            for logical, resource in template["Resources"].items():
                kind = resource["Type"]
                if kind not in NAME_PROPERTY:
                    continue
                props = resource.get("Properties", {})
                if kind == "AWS::SQS::Queue":
                    assert props["FifoQueue"] is True  # the limit and the suffix are FIFO's
                name = props.get(NAME_PROPERTY[kind])
                if name is not None:
                    assert isinstance(name, str), (stack, logical, name)
                    length = len(name)
                else:
                    length = aws_limits.longest_generated_name(kind, stack, logical)
                limit = aws_limits.GENERATED[kind].limit
                checked[kind] += 1
                if length > limit.maximum:
                    too_long.append(
                        f"{stack}/{logical}: {name or 'generated name'} {length} > {limit.maximum}"
                    )
        assert set(checked) == set(NAME_PROPERTY), (env, checked)
        assert not too_long, (env, too_long)


def test_the_trigger_queues_have_the_names_bakery_gives_them(plans, templates):
    for env, stacks in templates.items():
        plan = plans[env]
        triggered = [ly for ly in plan.layers if ly.triggers.schedule or ly.triggers.events]
        assert triggered
        queues = {
            r["Properties"]["QueueName"]
            for template in stacks.values()
            for r in resources(template, "AWS::SQS::Queue").values()
        }
        expected = {trigger_queue_name(plan, ly.name) for ly in triggered}
        expected |= {dead_letter_queue_name(plan, ly.name) for ly in triggered}
        assert queues == expected
        assert all(len(q) <= aws_limits.SQS_FIFO_QUEUE_NAME.maximum for q in queues)


def test_state_machines_log_under_vendedlogs(templates):
    for stacks in templates.values():
        machines = 0
        for template in stacks.values():
            for machine in resources(template, "AWS::StepFunctions::StateMachine").values():
                props = machine["Properties"]
                (destination,) = props["LoggingConfiguration"]["Destinations"]
                group = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
                name = template["Resources"][group]["Properties"]["LogGroupName"]
                assert name == f"/aws/vendedlogs/states/{props['StateMachineName']}"
                machines += 1
        assert machines == len(stacks) - 1  # one per layer stack


# ---------------------------------------------------------------- IAM


def test_the_pipe_depends_on_its_roles_policy(templates):
    for stacks in templates.values():
        pipes = 0
        for template in stacks.values():
            for pipe in resources(template, "AWS::Pipes::Pipe").values():
                role = pipe["Properties"]["RoleArn"]["Fn::GetAtt"][0]
                policies = [logical for logical, _ in attached(template, role)]
                assert policies
                assert set(policies) <= set(pipe.get("DependsOn", [])), pipe.get("DependsOn")
                pipes += 1
        assert pipes >= 2


def test_every_roles_inline_policies_are_within_iams_limit(templates):
    inline, managed = policy_sizes(templates["production"])
    assert len(inline) >= 15
    limit = aws_limits.IAM_ROLE_INLINE_POLICIES.maximum
    assert not {role: n for role, n in inline.items() if n > limit}
    assert all(n <= aws_limits.IAM_MANAGED_POLICY.maximum for n in managed.values()), managed
    # current_boundary_changes' state machine role is the largest (~7,300 characters).
    largest = max(inline, key=inline.__getitem__)
    assert largest.endswith("/StateMachineRole78EC082E") and inline[largest] > 5000


def test_athena_writes_have_what_step_functions_athena_policy_has(templates):
    """https://docs.aws.amazon.com/step-functions/latest/dg/athena-iam.html (.sync)."""
    writes = 0
    for template in templates["production"].values():
        statements = [
            st
            for _, policy in attached(template, "StateMachineRole78EC082E")
            for st in policy["Properties"]["PolicyDocument"]["Statement"]
        ]
        for st in statements:
            actions = set(as_list(st["Action"]))
            if "glue:CreatePartition" in actions:
                assert {"glue:UpdatePartition", "glue:GetTables"} <= actions
                writes += 1
        buckets = [
            st for st in statements if "s3:ListBucketMultipartUploads" in as_list(st["Action"])
        ]
        if any("s3:PutObject" in as_list(st["Action"]) for st in statements):
            assert buckets
    assert writes >= 3


def test_functions_use_the_pandas_layer_bakery_yaml_names(plans, templates):
    for env, stacks in templates.items():
        layers = Counter(
            json.dumps(fn["Properties"].get("Layers"))
            for template in stacks.values()
            for fn in resources(template, "AWS::Lambda::Function").values()
        )
        assert layers[json.dumps([plans[env].project.pandas_layer_arn])] >= 3, layers
        assert set(layers) == {"null", json.dumps([plans[env].project.pandas_layer_arn])}


# ---------------------------------------------------------------- a layer too big for inline

WIDE_TABLES = 24


def wide_layer() -> str:
    steps = []
    for i in range(WIDE_TABLES):
        steps.append(f"""\
  - type: glue_table
    name: wide_{i:02d}
    location: s3://pollingstations.private.data/wide/{{{{ env }}}}/t{i:02d}/
    format: parquet
    columns: [{{name: uprn, type: string}}, {{name: postcode, type: string}}]
  - type: athena_query
    id: fill_{i:02d}
    sql: >-
      SELECT uprn, postcode FROM {{{{ ref('addressbase.addressbase_partitioned') }}}}
    into: wide_{i:02d}
""")
    return "name: wide\ndescription: Many tables, one state machine role.\nsteps:\n" + "".join(
        steps
    )


# A layer version of its own, so the test shows the functions take bakery.yaml's.
WIDE_PANDAS = "arn:aws:lambda:eu-west-2:336392948345:layer:AWSSDKPandas-Python314:9"


@pytest.fixture(scope="module")
def wide(tmp_path_factory) -> dict[str, dict]:
    """The tests' project with a layer of WIDE_TABLES tables, synthesized for development."""
    tmp = tmp_path_factory.mktemp("wide")
    root = tmp / "project"
    shutil.copytree(PROJECT, root)
    (root / "layers" / "wide.yaml").write_text(wide_layer())
    project_file = root / "bakery.yaml"
    text = project_file.read_text()
    assert WIDE_PANDAS.replace(":9", ":6") in text
    project_file.write_text(text.replace(WIDE_PANDAS.replace(":9", ":6"), WIDE_PANDAS))
    return synth_templates(build_plan(load_workspace(root), "development"), tmp)


def test_grants_beyond_the_inline_limit_go_to_managed_policies(wide):
    template = wide["dc-data-baker-wide-development"]  # cdk-nag passed on it
    inline, managed = policy_sizes(wide)
    role = "dc-data-baker-wide-development/StateMachineRole78EC082E"
    assert inline[role] <= aws_limits.IAM_ROLE_INLINE_POLICIES.maximum
    ours = {logical for logical, _ in attached(template, "StateMachineRole78EC082E")}
    grants = {m.split("/")[1] for m in managed} & ours
    assert grants, "nothing was moved to a managed policy"
    sizes = [managed[f"dc-data-baker-wide-development/{g}"] for g in grants]
    assert all(n <= aws_limits.IAM_MANAGED_POLICY.maximum for n in sizes)
    # Inline and managed together hold every table's grants, and the whole would not have
    # fitted inline.
    text = json.dumps([p for _, p in attached(template, "StateMachineRole78EC082E")])
    for i in range(WIDE_TABLES):
        assert f"wide_{i:02d}__staging" in text and f"wide/development/t{i:02d}/" in text
    assert inline[role] + sum(sizes) > aws_limits.IAM_ROLE_INLINE_POLICIES.maximum
    # The state machine waits for every policy of its role.
    (machine,) = resources(template, "AWS::StepFunctions::StateMachine").values()
    assert ours <= set(machine["DependsOn"])
    # No role of the project is over the limit, the publish function's included.
    assert max(inline.values()) <= aws_limits.IAM_ROLE_INLINE_POLICIES.maximum


def test_the_functions_take_the_pandas_layer_from_bakery_yaml(wide):
    layers = [
        fn["Properties"].get("Layers")
        for template in wide.values()
        for fn in resources(template, "AWS::Lambda::Function").values()
    ]
    assert layers.count([WIDE_PANDAS]) == 2  # export_ballots and export_outcodes' export
    assert all(layer in (None, [WIDE_PANDAS]) for layer in layers)
