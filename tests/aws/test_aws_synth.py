"""The real app, synthesized once: stacks, resources, tags, definitions, IAM, cdk-nag, cfn-lint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_helpers import Synthesized, resources

from bakery.compile.asl import ATHENA_SYNC, LAMBDA_INVOKE, compile_layer
from bakery.compile.staging import staged_tables, staging_location
from bakery.planning.names import core_stack_name, layer_stack_name, state_machine_name

# Actions AWS defines on no resource, so "Resource": "*" is the only form IAM accepts.
# Each comes from a feature switched on deliberately; the reason is why it is on.
STAR_RESOURCE_ALLOWED = {
    # Step Functions execution logging to CloudWatch Logs (vended log delivery APIs).
    "logs:CreateLogDelivery": "state machine execution logs (level ALL)",
    "logs:GetLogDelivery": "state machine execution logs",
    "logs:UpdateLogDelivery": "state machine execution logs",
    "logs:DeleteLogDelivery": "state machine execution logs",
    "logs:ListLogDeliveries": "state machine execution logs",
    "logs:PutResourcePolicy": "state machine execution logs",
    "logs:DescribeResourcePolicies": "state machine execution logs",
    "logs:DescribeLogGroups": "state machine execution logs",
    # X-Ray tracing of the state machines.
    "xray:PutTraceSegments": "state machine X-Ray tracing",
    "xray:PutTelemetryRecords": "state machine X-Ray tracing",
    "xray:GetSamplingRules": "state machine X-Ray tracing",
    "xray:GetSamplingTargets": "state machine X-Ray tracing",
}


def all_states(states: dict) -> dict[str, dict]:
    """Every state, Map bodies included."""
    out = {}
    for name, state in states.items():
        out[name] = state
        body = state.get("ItemProcessor") or state.get("Iterator")
        if body:
            out.update(all_states(body["States"]))
    return out


def definition(synthesized: Synthesized, layer: str) -> dict:
    template = synthesized.templates[layer_stack_name(synthesized.plan, layer)]
    (machine,) = resources(template, "AWS::StepFunctions::StateMachine").values()
    return json.loads(machine["Properties"]["DefinitionString"])


def statements(template: dict) -> list[dict]:
    out = []
    for res in template["Resources"].values():
        if res["Type"] == "AWS::IAM::Policy":
            out += res["Properties"]["PolicyDocument"]["Statement"]
        if res["Type"] == "AWS::IAM::Role":
            for policy in res["Properties"].get("Policies", []):
                out += policy["PolicyDocument"]["Statement"]
    return out


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_one_template_per_stack(synthesized: Synthesized):
    plan = synthesized.plan
    expected = {core_stack_name(plan)} | {layer_stack_name(plan, ly.name) for ly in plan.layers}
    assert set(synthesized.templates) == expected
    for name in expected:
        assert (synthesized.outdir / f"{name}.template.json").is_file()


def test_core_stack(synthesized: Synthesized):
    core = synthesized.templates[core_stack_name(synthesized.plan)]
    project = synthesized.plan.project
    (db,) = resources(core, "AWS::Glue::Database").values()
    assert db["Properties"]["DatabaseInput"]["Name"] == "dc_data_baker"
    (wg,) = resources(core, "AWS::Athena::WorkGroup").values()
    config = wg["Properties"]["WorkGroupConfiguration"]
    assert wg["Properties"]["Name"] == project.athena.workgroup
    assert config["BytesScannedCutoffPerQuery"] == project.athena.bytes_scanned_cutoff
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["ResultConfiguration"]["OutputLocation"] == project.athena.results
    assert config["ResultConfiguration"]["EncryptionConfiguration"] == {
        "EncryptionOption": "SSE_S3"
    }
    assert len(resources(core, "AWS::Lambda::Function")) == 1  # takes a singleton's lock


def test_singleton_lock_resources(synthesized: Synthesized):
    """The lock table (core), who may take and release a lock, and who may re-queue."""
    plan = synthesized.plan
    core = synthesized.templates[core_stack_name(plan)]
    ((table_id, table),) = resources(core, "AWS::DynamoDB::Table").items()
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "layer", "KeyType": "HASH"}]
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    core_policy = json.dumps(resources(core, "AWS::IAM::Policy"))
    assert '"dynamodb:PutItem", "dynamodb:UpdateItem"' in core_policy
    assert "states:ListExecutions" not in core_policy
    for layer in ("addressbase", "current_elections"):
        template = synthesized.templates[layer_stack_name(plan, layer)]
        (machine,) = resources(template, "AWS::StepFunctions::StateMachine").values()
        subs = machine["Properties"]["DefinitionSubstitutions"]
        assert table_id in json.dumps(subs["LockTable"])  # the core table's name, imported
        # The lock outlives any execution: a timed-out one cannot release it.
        d = json.loads(machine["Properties"]["DefinitionString"])
        seconds = d["States"]["take the lock"]["Parameters"]["Payload"]["seconds"]
        assert seconds > d["TimeoutSeconds"]
        statements = [
            st
            for policy in resources(template, "AWS::IAM::Policy").values()
            for st in policy["Properties"]["PolicyDocument"]["Statement"]
        ]
        actions = {a for st in statements for a in [st["Action"]] if isinstance(a, str)}
        assert "dynamodb:DeleteItem" in actions
        # Only a layer with triggers re-queues, onto its own queue.
        queues = resources(template, "AWS::SQS::Queue")
        sends = [st for st in statements if st["Action"] == "sqs:SendMessage"]
        if layer == "addressbase":
            assert "TriggerQueueUrl" not in subs and sends == [] and queues == {}
        else:
            # the state machine's role and the release Lambda's (after a failed run)
            (queue_id,) = [q for q in queues if "DeadLetters" not in q]
            assert [send["Resource"] for send in sends] == [{"Fn::GetAtt": [queue_id, "Arn"]}] * 2
            assert subs["TriggerQueueUrl"] == {"Ref": queue_id}


def test_a_failed_timed_out_or_aborted_run_releases_its_lock_by_rule(synthesized: Synthesized):
    """No state of such a run releases the lock: a rule on its status change invokes the
    release Lambda, with the table, the layer, the execution and the queue to re-queue to."""
    plan = synthesized.plan
    core = synthesized.templates[core_stack_name(plan)]
    ((table_id, _),) = resources(core, "AWS::DynamoDB::Table").items()
    for layer in ("addressbase", "current_elections"):
        template = synthesized.templates[layer_stack_name(plan, layer)]
        ((machine_id, _),) = resources(template, "AWS::StepFunctions::StateMachine").items()
        functions = resources(template, "AWS::Lambda::Function")
        release = {
            k: f
            for k, f in functions.items()
            if f["Properties"]["Handler"] == "bakery.lambdas.singleton.release_handler"
        }
        ((function_id, function),) = release.items()
        rules = [
            r
            for r in resources(template, "AWS::Events::Rule").values()
            if any(
                t["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]} for t in r["Properties"]["Targets"]
            )
        ]
        (rule,) = rules
        pattern = rule["Properties"]["EventPattern"]
        assert pattern["source"] == ["aws.states"]
        assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
        assert sorted(pattern["detail"]["status"]) == ["ABORTED", "FAILED", "TIMED_OUT"]
        assert pattern["detail"]["stateMachineArn"] == [{"Ref": machine_id}]
        (target,) = rule["Properties"]["Targets"]
        transformer = target["InputTransformer"]
        assert transformer["InputPathsMap"] == {"detail-executionArn": "$.detail.executionArn"}
        template_text = json.dumps(transformer["InputTemplate"])
        assert "<detail-executionArn>" in template_text and table_id in template_text
        # EventBridge may invoke it: the permission sits in the layer stack, with the rule.
        (permission,) = resources(template, "AWS::Lambda::Permission").values()
        assert permission["Properties"]["Principal"] == "events.amazonaws.com"
        role = function["Properties"]["Role"]["Fn::GetAtt"][0]
        statements = [
            st
            for policy in resources(template, "AWS::IAM::Policy").values()
            if {"Ref": role} in policy["Properties"]["Roles"]
            for st in policy["Properties"]["PolicyDocument"]["Statement"]
        ]
        actions = {st["Action"] for st in statements if isinstance(st["Action"], str)}
        assert "dynamodb:DeleteItem" in actions
        assert ("sqs:SendMessage" in actions) == (layer == "current_elections")
        assert ("queue_url" in template_text) == (layer == "current_elections")


def test_resources_per_layer(synthesized: Synthesized):
    from aws_cdk.assertions import Template

    plan = synthesized.plan
    kinds = (
        "AWS::Glue::Table",
        "AWS::StepFunctions::StateMachine",
        "AWS::Lambda::Function",
        "AWS::SQS::Queue",
        "AWS::Events::Rule",
        "AWS::Pipes::Pipe",
        "AWS::S3::Bucket",
    )
    expected = {
        # tables (+ staging, the Lambda's table's too), state machines, Lambdas (purge,
        # publish, ..., the lock's release; no delete_stale: the publish deletes stale
        # files), queues, rules (triggers, the lock's release), pipes, buckets
        "addressbase": (3, 1, 3, 0, 1, 0, 0),
        "current_elections": (4, 1, 5, 2, 3, 1, 0),
    }
    for layer, counts in expected.items():
        template = Template.from_json(synthesized.templates[layer_stack_name(plan, layer)])
        for kind, n in zip(kinds, counts, strict=True):
            template.resource_count_is(kind, n)


def test_layer_resources_with_cdk_assertions(synthesized: Synthesized):
    from aws_cdk.assertions import Match, Template

    plan = synthesized.plan
    template = Template.from_json(
        synthesized.templates[layer_stack_name(plan, "current_elections")]
    )
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineName": "dc-data-baker-current-elections-development",
            "Tags": Match.array_with(
                [
                    {"Key": "dc-environment", "Value": "development"},
                    {"Key": "dc-product", "Value": "dc-data-baker"},
                ]
            ),
            "TracingConfiguration": {"Enabled": True},
        },
    )
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {"FifoQueue": True, "ContentBasedDeduplication": True, "DelaySeconds": 300},
    )
    template.has_resource_properties(
        "AWS::Events::Rule", {"ScheduleExpression": "cron(0 1 * * ? *)", "State": "ENABLED"}
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "bakery.lambdas.ee_export.handler",
            "Timeout": 900,
            "Environment": {
                "Variables": {
                    "DATABASE_HOST": "/EveryElectionProd/DATABASE_HOST",
                    "DATABASE_PASSWORD": "/EveryElectionProd/DatabasePassword",
                    "FILE_NAME": "current_elections.csv",
                }
            },
            "Layers": [Match.string_like_regexp(r"^arn:aws:lambda:eu-west-2:336392948345:layer:")],
        },
    )


def test_no_bucket_is_created(synthesized: Synthesized):
    for template in synthesized.templates.values():
        assert not resources(template, "AWS::S3::Bucket")


def test_every_taggable_resource_is_tagged(synthesized: Synthesized):
    want = {"dc-product": "dc-data-baker", "dc-environment": "development"}
    tagged = 0
    for template in synthesized.templates.values():
        for lid, res in template["Resources"].items():
            tags = res.get("Properties", {}).get("Tags")
            if tags is None:
                continue
            tagged += 1
            pairs = {t["Key"]: t["Value"] for t in tags} if isinstance(tags, list) else dict(tags)
            for key, value in want.items():
                assert pairs.get(key) == value, f"{lid} lacks tag {key}={value}"
    assert tagged >= 15
    for layer in ("addressbase", "current_elections"):
        template = synthesized.templates[layer_stack_name(synthesized.plan, layer)]
        (machine,) = resources(template, "AWS::StepFunctions::StateMachine").values()
        assert {"Key": "dc-product", "Value": "dc-data-baker"} in machine["Properties"]["Tags"]


def test_glue_tables(synthesized: Synthesized):
    plan = synthesized.plan
    template = synthesized.templates[layer_stack_name(plan, "addressbase")]
    tables = {
        t["Properties"]["TableInput"]["Name"]: t["Properties"]["TableInput"]
        for t in resources(template, "AWS::Glue::Table").values()
    }
    raw = tables["addressbase_cleaned_raw"]
    sd = raw["StorageDescriptor"]
    assert sd["Location"] == plan.table("addressbase.addressbase_cleaned_raw").location
    assert sd["SerdeInfo"]["SerializationLibrary"].endswith("OpenCSVSerde")
    assert sd["SerdeInfo"]["Parameters"]["separatorChar"] == ","
    assert "skip.header.line.count" not in raw["Parameters"]  # header: false
    assert [c["Name"] for c in sd["Columns"]] == [
        "uprn",
        "address",
        "postcode",
        "location",
        "address_type",
    ]
    part = tables["addressbase_partitioned"]
    assert part["PartitionKeys"] == [
        {"Name": "first_letter", "Type": "string", "Comment": "First character of the postcode."}
    ]
    assert part["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith(
        "ParquetHiveSerDe"
    )
    assert part["Parameters"]["parquet.compression"] == "SNAPPY"
    ballots = synthesized.templates[layer_stack_name(plan, "current_elections")]
    (current,) = [
        t["Properties"]["TableInput"]
        for t in resources(ballots, "AWS::Glue::Table").values()
        if t["Properties"]["TableInput"]["Name"] == "current_ballots"
    ]
    assert current["Parameters"]["skip.header.line.count"] == "1"


def test_definition_is_the_asl_file(synthesized: Synthesized):
    """The deployed definition is exactly what `bakery synth` writes to build/asl/."""
    plan = synthesized.plan
    for layer in plan.layers:
        template = synthesized.templates[layer_stack_name(plan, layer.name)]
        (machine,) = resources(template, "AWS::StepFunctions::StateMachine").values()
        props = machine["Properties"]
        assert props["DefinitionString"] == compile_layer(plan, layer).to_json()
        assert props["StateMachineName"] == state_machine_name(plan, layer.name)
        assert props["LoggingConfiguration"]["Level"] == "ALL"
        assert props["TracingConfiguration"] == {"Enabled": True}
        placeholders = set(json.dumps(props["DefinitionString"]).split("${")[1:])
        keys = {p.split("}")[0] for p in placeholders}
        assert keys == set(props["DefinitionSubstitutions"])


@pytest.mark.parametrize("layer", ["addressbase", "current_elections"])
def test_every_task_retries_transient_errors_and_fails_by_name(synthesized: Synthesized, layer):
    d = definition(synthesized, layer)
    states = all_states(d["States"])
    tasks = {n: s for n, s in states.items() if s["Type"] == "Task"}
    assert tasks
    for name, task in tasks.items():
        assert task.get("Retry"), f"{name} has no Retry"
        for rule in task["Retry"]:
            assert "States.ALL" not in rule["ErrorEquals"], name
            assert "States.TaskFailed" not in rule["ErrorEquals"], name
            assert rule["BackoffRate"] >= 2 and rule["MaxAttempts"] >= 3
        if task["Resource"].startswith("arn:aws:states:::athena:"):
            # The query quota first (its own long retrier), then service errors; never the
            # SDK base exception (bad requests) in these two.
            assert [r["ErrorEquals"] for r in task["Retry"][:2]] == [
                ["Athena.TooManyRequestsException"],
                ["Athena.InternalServerException"],
            ], name
        if task["Resource"] == LAMBDA_INVOKE:
            assert task["Retry"][0]["ErrorEquals"] == [
                "Lambda.ServiceException",
                "Lambda.AWSLambdaException",
                "Lambda.SdkClientException",
                "Lambda.TooManyRequestsException",
                "Lambda.ClientExecutionTimeoutException",
            ], name
    # Top-level Tasks and Maps catch into a Fail state that names their step, in a singleton
    # layer too: its lock is released after a failure from outside the definition
    # (bakery.constructs.lock), so every Fail keeps its error and cause.
    lock_own = {"take the lock", "release the lock", "re-queue the deferred trigger"}
    for name, state in d["States"].items():
        if state["Type"] in ("Task", "Map") and name not in lock_own:
            (catch,) = state["Catch"]
            fail = d["States"][catch["Next"]]
            assert fail["Type"] == "Fail", name
            assert fail["Error"].startswith(f"{layer}."), name
    assert d["TimeoutSeconds"] == synthesized.plan.layer(layer).spec.timeout_minutes * 60


@pytest.mark.parametrize("layer", ["addressbase", "current_elections"])
def test_steps_run_in_spec_order(synthesized: Synthesized, layer):
    d = definition(synthesized, layer)
    step_ids = [s.id for s in synthesized.plan.layer(layer).steps]
    visited = []
    name = d["StartAt"]
    while name:
        visited.append(name)
        state = d["States"][name]
        name = state.get("Next") or state.get("Default")
    assert visited[:3] == ["start", "take the lock", "lock taken?"]
    assert visited[-1] == "succeeded"
    seen = [n for n in visited if n in step_ids]
    assert seen == step_ids


def test_athena_steps(synthesized: Synthesized):
    plan = synthesized.plan
    d = definition(synthesized, "addressbase")
    step = d["States"]["partition_addressbase"]
    # UNLOAD needs an empty destination: each attempt (the Parallel's Retry) empties it first.
    assert step["Type"] == "Parallel" and [r["ErrorEquals"] for r in step["Retry"][:2]] == [
        ["Athena.TooManyRequestsException"],
        ["Athena.InternalServerException"],
    ]
    (branch,) = step["Branches"]
    empty = branch["States"][branch["StartAt"]]
    part = branch["States"][empty["Next"]]
    assert "Retry" not in part
    assert part["Resource"] == "arn:aws:states:::athena:startQueryExecution.sync"
    params = part["Parameters"]
    assert params["WorkGroup"] == "dc-data-baker"
    assert params["QueryExecutionContext"] == {
        "Catalog": "AwsDataCatalog",
        "Database": "dc_data_baker",
    }
    query = params["QueryString"]
    table = plan.table("addressbase.addressbase_partitioned")
    location = staging_location(table)  # the live table is untouched until publish
    assert location == (
        "s3://pollingstations.private.data/bakery-staging/addressbase/development/"
        "addressbase_partitioned/"
    )
    assert table.location not in query
    assert query.startswith("UNLOAD (\n")
    assert query.endswith(
        f"TO '{location}'\nWITH (format = 'PARQUET', compression = 'SNAPPY', "
        "partitioned_by = ARRAY['first_letter'])"
    )
    refresh = d["States"]["refresh_addressbase_partitioned"]
    assert (
        refresh["Parameters"]["QueryString"]
        == "MSCK REPAIR TABLE dc_data_baker.addressbase_partitioned__staging"
    )
    purge = d["States"]["empty_partitioned"]
    assert purge["Parameters"]["Payload"] == {"location": location}
    assert empty["Parameters"]["Payload"] == {"location": location}


def test_fanned_out_geo_join_passes_values_as_execution_parameters(synthesized: Synthesized):
    plan = synthesized.plan
    d = definition(synthesized, "current_elections")
    fan = d["States"]["join_ballots_to_addresses"]
    assert fan["Type"] == "Map" and fan["MaxConcurrency"] == 26
    one = fan["ItemProcessor"]["States"]["join_ballots_to_addresses unload one value"]
    assert one["Type"] == "Parallel"
    (branch,) = one["Branches"]
    empty = branch["States"][branch["StartAt"]]
    assert empty["Parameters"]["Payload"] == {"location.$": "$.location"}
    body = branch["States"][empty["Next"]]
    assert body["Resource"] == ATHENA_SYNC
    assert body["Parameters"]["QueryString.$"] == "$.query"
    assert body["Parameters"]["ExecutionParameters.$"] == "$.params"
    items = d["States"]["join_ballots_to_addresses items"]["Result"]
    assert [i["value"] for i in items] == [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    table = plan.table("current_elections.current_ballots_joined_to_address_base")
    location = staging_location(table)
    for item in items:
        assert table.location not in item["query"]
        assert item["params"] == [f"'{item['value']}'"]
        assert item["location"] == f"{location}first_letter={item['value']}/"
        assert f"TO '{location}first_letter={item['value']}/'" in item["query"]
        assert "partitioned_by" not in item["query"]
        # The value reaches the SQL only as the execution parameter.
        assert "first_letter = ?" in item["query"]
        assert f"= '{item['value']}'" not in item["query"]


def test_checks_compile_to_query_results_choice_fail(synthesized: Synthesized):
    d = definition(synthesized, "current_elections")
    states = d["States"]
    q = states["same_uprns_as_raw"]
    assert q["Resource"] == ATHENA_SYNC and q["Next"] == "same_uprns_as_raw results"
    r = states["same_uprns_as_raw results"]
    assert r["Resource"] == "arn:aws:states:::athena:getQueryResults"
    v = states["same_uprns_as_raw passed?"]
    assert v["Type"] == "Choice"
    assert v["Choices"][0]["Variable"] == "$.check.rows[1]"
    fail = states[v["Choices"][0]["Next"]]
    assert fail["Type"] == "Fail" and fail["Error"] == "current_elections.same_uprns_as_raw failed"
    # The plan's wording, which the local engine uses too.
    layer = synthesized.plan.layer("current_elections")
    what = next(s for s in layer.steps if s.id == "same_uprns_as_raw").description
    assert what == (
        "current_ballots_joined_to_address_base.uprn holds the same non-empty set of values as "
        "addressbase.addressbase_cleaned_raw.uprn"
    )
    assert fail["CausePath"] == (
        f"States.Format('check current_elections.same_uprns_as_raw failed: {what}: {{}}', "
        "$.check.rows[1].Data[0].VarCharValue)"
    )


def test_export_by_key_maps_over_partitions_then_the_layer_publishes(synthesized: Synthesized):
    d = definition(synthesized, "current_elections")
    items = d["States"]["export_outcodes items"]["Result"]
    assert items[0] == {"partition": {"first_letter": "A"}} and len(items) == 26
    m = d["States"]["export_outcodes"]
    body = m["ItemProcessor"]["States"]["export_outcodes export partition"]
    payload = body["Parameters"]["Payload"]
    assert payload["key"] == "outcode" and payload["unique_by"] == "uprn"
    assert payload["partition.$"] == "$.partition"
    assert m["ResultPath"] == "$.exported" and m["Next"] == "publish"
    # stale files go in the publish (the export's item says which), not in a state of its own
    assert "export_outcodes delete stale" not in d["States"]
    (item,) = [
        i
        for i in d["States"]["publish"]["Parameters"]["Payload"]["items"]
        if i["live_location"] == payload_destination(synthesized)
    ]
    assert item["stale"] == "key_files"


def test_triggers(synthesized: Synthesized):
    template = synthesized.templates[layer_stack_name(synthesized.plan, "current_elections")]
    queues = resources(template, "AWS::SQS::Queue")
    (main,) = [q for q in queues.values() if "DelaySeconds" in q["Properties"]]
    assert main["Properties"]["FifoQueue"] is True
    assert main["Properties"]["ContentBasedDeduplication"] is True
    assert main["Properties"]["DelaySeconds"] == 300
    assert main["Properties"]["SqsManagedSseEnabled"] is True
    rules = [
        r
        for r in resources(template, "AWS::Events::Rule").values()
        # not the lock's release rule (test_a_failed_timed_out_or_aborted_run_releases_...)
        if r["Properties"].get("EventPattern", {}).get("source") != ["aws.states"]
    ]
    assert {r["Properties"].get("ScheduleExpression") for r in rules} >= {"cron(0 1 * * ? *)"}
    patterns = [r["Properties"]["EventPattern"] for r in rules if "EventPattern" in r["Properties"]]
    assert patterns == [{"detail-type": ["elections_set_changed"]}]
    for rule in rules:
        (target,) = rule["Properties"]["Targets"]
        assert json.loads(target["Input"]) == {"layer": "current_elections"}
        assert target["SqsParameters"] == {"MessageGroupId": "current_elections"}
    (pipe,) = resources(template, "AWS::Pipes::Pipe").values()
    props = pipe["Properties"]
    assert props["TargetParameters"]["StepFunctionStateMachineParameters"] == {
        "InvocationType": "FIRE_AND_FORGET"
    }
    assert props["SourceParameters"]["SqsQueueParameters"]["BatchSize"] == 1


def test_iam_least_privilege(synthesized: Synthesized):
    count = 0
    for stack, template in synthesized.templates.items():
        for st in statements(template):
            count += 1
            actions = as_list(st["Action"])
            for action in actions:
                assert "*" not in action, f"{stack}: wildcard action {action}"
            if "*" in as_list(st["Resource"]):
                extra = [a for a in actions if a not in STAR_RESOURCE_ALLOWED]
                assert not extra, f"{stack}: Resource '*' for {extra}"
            for res in as_list(st["Resource"]):
                if isinstance(res, str) and res.startswith("arn:aws:s3:::"):
                    path = res[len("arn:aws:s3:::") :]
                    if "/" in path:  # object ARNs: a prefix the layer reads or writes, then '*'
                        assert path.endswith("/*") and path.count("*") == 1, res
                    else:
                        assert "*" not in path, res
            assert st["Effect"] == "Allow"
    assert count > 20


def payload_destination(synthesized: Synthesized) -> str:
    layer = synthesized.plan.layer("current_elections")
    return next(s.location or "" for s in layer.steps if s.kind == "export_by_key")


def test_s3_access_is_scoped_to_table_prefixes(synthesized: Synthesized):
    from bakery.compile.staging import export_staging_location

    plan = synthesized.plan
    known = {t.location for t in plan.tables.values()}
    known |= {
        export_staging_location(s.location)
        for ly in plan.layers
        for s in ly.walk()
        if s.kind == "export_by_key" and s.location
    }
    known |= {staging_location(t) for ly in plan.layers for t in staged_tables(plan, ly)}
    known |= {s.location for ly in plan.layers for s in ly.walk() if s.location}
    known.add(plan.project.athena.results)
    for template in synthesized.templates.values():
        for st in statements(template):
            for res in as_list(st["Resource"]):
                if isinstance(res, str) and res.startswith("arn:aws:s3:::") and "/" in res:
                    location = "s3://" + res[len("arn:aws:s3:::") : -1]
                    assert location in known, res


def test_cdk_nag_clean_and_every_acknowledgment_has_a_reason(synthesized: Synthesized):
    failures = [
        v
        for report in synthesized.report.get("pluginReports", [])
        for v in report.get("violations", [])
    ]
    assert failures == []
    reasons = []
    for template in synthesized.templates.values():
        for res in template["Resources"].values():
            for rule in res.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
                assert rule["reason"].strip(), rule
                reasons.append(rule["id"])
    assert reasons, "expected the acknowledged IAM5 findings in the metadata"
    assert all(r.startswith("AwsSolutions-IAM5") for r in reasons), reasons


def test_cfn_lint_finds_no_errors(synthesized: Synthesized):
    from cfnlint.api import lint_file

    for name in synthesized.templates:
        matches = lint_file(Path(synthesized.outdir / f"{name}.template.json"))
        errors = [m for m in matches if m.rule.id.startswith("E")]
        assert errors == [], f"{name}: {[str(e) for e in errors]}"


def test_fixed_maps_start_on_the_item_itself(synthesized: Synthesized):
    """No ItemSelector and no unwrapping Pass: each iteration's input is its item."""
    d = definition(synthesized, "current_elections")
    for name in ("join_ballots_to_addresses", "export_outcodes"):
        m = d["States"][name]
        assert "ItemSelector" not in m and "Parameters" not in m
        assert m["ItemProcessor"]["StartAt"] in (
            f"{name} unload one value",
            f"{name} export partition",
        )
        assert f"{name} item" not in m["ItemProcessor"]["States"]


def test_lambda_step_gets_its_staged_table_location_once(synthesized: Synthesized):
    from bakery.compile.staging import staging_location

    plan = synthesized.plan
    d = definition(synthesized, "current_elections")
    lambda_steps = [s for s in plan.layer("current_elections").steps if s.kind == "lambda"]
    assert lambda_steps
    for step in lambda_steps:
        payload = d["States"][step.id]["Parameters"]["Payload"]
        # the publish plan stages the Lambda's table: it gets the staging as input
        assert payload["table_location"] == staging_location(plan.table(step.writes[0]))
    template = synthesized.templates[layer_stack_name(plan, "current_elections")]
    env = [
        f["Properties"]["Environment"]["Variables"]
        for f in resources(template, "AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == "bakery.lambdas.ee_export.handler"
    ]
    assert env and all("TABLE_LOCATION" not in e for e in env)


def test_the_export_lambda_has_the_pandas_layer_and_no_delete_stale_function(
    synthesized: Synthesized,
):
    template = synthesized.templates[layer_stack_name(synthesized.plan, "current_elections")]
    functions = {
        f["Properties"]["Handler"]: f["Properties"]
        for f in resources(template, "AWS::Lambda::Function").values()
    }
    # stale files are deleted by the layer's publish, after every export
    assert "bakery.lambdas.export_by_key.delete_stale_handler" not in functions
    assert functions["bakery.lambdas.export_by_key.handler"]["Layers"]  # pyarrow


def test_acknowledgments_are_per_app_not_per_reused_id(monkeypatch: pytest.MonkeyPatch):
    """A later app in the same process (whose root may get a reused id) is acknowledged too."""
    from aws_cdk import App, Stack
    from aws_cdk import aws_iam as iam

    from bakery.constructs import access

    monkeypatch.setattr(access, "id", lambda _obj: 1, raising=False)  # every root "reused"

    def role() -> iam.Role:
        stack = Stack(App(), "S")
        return iam.Role(stack, "R", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))

    for r in (role(), role()):
        access.acknowledge(r, "AwsSolutions-IAM5[Resource::x]", "why")
        (meta,) = [m.data for m in r.node.metadata if m.type == "aws:cdk:acknowledged-rules"]
        assert meta == {"Annotation::AwsSolutions-IAM5[Resource::x]": "why"}
