"""Staged publish on AWS: build in staging, check and export there, publish after the last step
(the layer's publish plan, bakery.planning.publish_plan)."""

from __future__ import annotations

import json
import re

import boto3
import pytest
from aws_helpers import Synthesized, fail_first_delete, resources
from moto import mock_aws

from bakery.compile.asl import LAMBDA_INVOKE, compile_layer
from bakery.compile.staging import (
    export_staging_location,
    rewrite_sql,
    staged_tables,
    staging_glue_name,
    staging_location,
    staging_name,
)
from bakery.lambdas import publish, purge
from bakery.plan import Plan, TablePlan
from bakery.planning.names import layer_stack_name

BUCKET = "pollingstations.private.data"
LAYERS = ["addressbase", "current_elections"]

LOCK_RELEASE = {"release the lock", "deferred while running?", "re-queue the deferred trigger"}


def chain(definition: dict) -> list[str]:
    """The top-level states from StartAt, following Next (and a Choice's Default)."""
    names, name = [], definition["StartAt"]
    while name:
        names.append(name)
        state = definition["States"][name]
        name = state.get("Next") or state.get("Default")
    return names


# The table each layer writes with a query (current_elections also stages the table its
# Lambda writes).
QUERY_TABLE = {
    "addressbase": "addressbase.addressbase_partitioned",
    "current_elections": "current_elections.current_ballots_joined_to_address_base",
}


def the_table(plan: Plan, layer: str) -> TablePlan:
    return plan.table(QUERY_TABLE[layer])


# -- naming ------------------------------------------------------------------


def test_staged_tables_are_every_table_the_layer_writes(plan: Plan):
    assert [t.ref for t in staged_tables(plan, plan.layer("addressbase"))] == [
        "addressbase.addressbase_partitioned"
    ]
    # current_ballots is written by a Lambda step: staged too, like bake stages it.
    assert [t.ref for t in staged_tables(plan, plan.layer("current_elections"))] == [
        "current_elections.current_ballots_joined_to_address_base",
        "current_elections.current_ballots",
    ]
    table = the_table(plan, "addressbase")
    assert staging_name(table) == "addressbase_partitioned__staging"
    assert staging_glue_name(table) == "dc_data_baker.addressbase_partitioned__staging"
    assert table.location == f"s3://{BUCKET}/addressbase/development/addressbase_partitioned/"
    assert staging_location(table) == (
        f"s3://{BUCKET}/bakery-staging/addressbase/development/addressbase_partitioned/"
    )


def test_rewrite_replaces_table_nodes_only(plan: Plan):
    table = the_table(plan, "addressbase")
    sql = (
        "SELECT addressbase_partitioned.uprn, 'dc_data_baker.addressbase_partitioned' AS note\n"
        "FROM dc_data_baker.addressbase_partitioned\n"
        "JOIN other_db.addressbase_partitioned AS o ON o.uprn = addressbase_partitioned.uprn\n"
        "WHERE first_letter = ?"
    )
    out = rewrite_sql(sql, [table])
    assert "FROM dc_data_baker.addressbase_partitioned__staging" in out
    # A string literal, another database's table and column qualifiers are not tables here.
    assert "'dc_data_baker.addressbase_partitioned' AS note" in out
    assert "other_db.addressbase_partitioned AS o" in out
    assert "= ?" in out  # execution parameters survive
    # A query reading no staged table keeps its text exactly.
    raw = "SELECT 1 FROM dc_data_baker.addressbase_cleaned_raw -- as written"
    assert rewrite_sql(raw, [table]) == raw


# -- the state machine -----------------------------------------------------


def test_publish_comes_after_the_last_check_and_the_export(plan: Plan):
    layer = plan.layer("current_elections")
    table = the_table(plan, "current_elections")
    ballots = plan.table("current_elections.current_ballots")
    d = compile_layer(plan, layer).definition
    names = chain(d)
    publish_at = names.index("publish")
    last_check = max(i for i, n in enumerate(names) if n.endswith(" passed?"))
    assert last_check < names.index("export_outcodes") < publish_at
    # after it only the repair, and the release of a singleton layer's lock
    after = names[publish_at + 1 :]
    assert after[0] == f"repair {table.name}" and after[-1] == "succeeded"
    assert all(n in LOCK_RELEASE for n in after[1:-1]), after
    state = d["States"]["publish"]
    assert state["Resource"] == LAMBDA_INVOKE
    assert state["Parameters"]["FunctionName"] == "${Function_publish}"
    (export,) = [s for s in layer.steps if s.kind == "export_by_key"]
    assert state["Parameters"]["Payload"] == {
        "items": [
            {
                "staging_location": staging_location(table),
                "live_location": table.location,
                "stale": "all",
            },
            {
                "staging_location": staging_location(ballots),
                "live_location": ballots.location,
                "stale": "all",
            },
            {
                "staging_location": export_staging_location(export.location),
                "live_location": export.location,
                "stale": "key_files",
            },
        ]
    }
    fail = d["States"][state["Catch"][0]["Next"]]
    assert fail["Type"] == "Fail" and fail["Error"] == "current_elections.publish failed"
    repair = d["States"][f"repair {table.name}"]
    assert repair["Parameters"]["QueryString"] == f"MSCK REPAIR TABLE {table.glue_name}"
    # export_by_key reads the staged table and writes into its staged folder.
    body = d["States"]["export_outcodes"]["ItemProcessor"]["States"]
    payload = body["export_outcodes export partition"]["Parameters"]["Payload"]
    assert payload["table_location"] == staging_location(table)
    assert payload["destination"] == export_staging_location(export.location)
    # the Lambda writes its table's staging, given as input
    assert d["States"]["export_ballots"]["Parameters"]["Payload"]["table_location"] == (
        staging_location(ballots)
    )


def test_publish_is_last_without_export(plan: Plan):
    table = the_table(plan, "addressbase")
    names = chain(compile_layer(plan, plan.layer("addressbase")).definition)
    # Nothing but the release of the singleton layer's lock comes after them.
    assert names[-4:] == ["publish", f"repair {table.name}", "release the lock", "succeeded"]
    assert names.index("same_uprns_as_raw passed?") < names.index("publish")


@pytest.mark.parametrize("layer", LAYERS)
def test_before_publish_nothing_touches_the_live_table(plan: Plan, layer: str):
    """A run failing before publish leaves the live table as it was."""
    table = the_table(plan, layer)
    d = compile_layer(plan, layer=plan.layer(layer)).definition
    names = chain(d)
    before = names[: names.index("publish")]
    text = json.dumps({n: d["States"][n] for n in before})
    for staged in staged_tables(plan, plan.layer(layer)):
        assert staged.location not in text
    for step in plan.layer(layer).steps:
        if step.kind == "export_by_key":
            assert f'"{step.location}"' not in text
    # only a publish guard names the live table, read-only, through the catalog, after
    # loading its partitions (MSCK REPAIR reads S3, writes only Glue partitions)
    live = r"(?<!awsdatacatalog\.)(?<!MSCK REPAIR TABLE )" + re.escape(table.glue_name)
    live += r"(?!__staging)\b"
    assert not re.search(live, text)
    # Every failure before publish ends in a Fail state, never in publish.
    for name in before:
        for catch in d["States"][name].get("Catch", []):
            assert d["States"][catch["Next"]]["Type"] == "Fail"


@pytest.mark.parametrize("layer", LAYERS)
def test_purge_unload_and_checks_use_staging(plan: Plan, layer: str):
    table = the_table(plan, layer)
    d = compile_layer(plan, plan.layer(layer)).definition
    states = d["States"]
    purges = [
        s
        for s in states.values()
        if s.get("Parameters", {}).get("FunctionName") == ("${Function_purge}")
    ]
    exports = [
        {"location": export_staging_location(s.location or "")}
        for s in plan.layer(layer).steps
        if s.kind == "export_by_key"
    ]
    assert sorted(json.dumps(p["Parameters"]["Payload"]) for p in purges) == sorted(
        json.dumps(p) for p in [{"location": staging_location(table)}, *exports]
    )
    text = json.dumps(d)
    unload_targets = re.findall(r"TO '([^']*)'", text)
    assert unload_targets
    assert all(t.startswith(staging_location(table)) for t in unload_targets)
    checks = [s for s in plan.layer(layer).steps if s.kind == "check" and table.ref in s.reads]
    assert checks
    for check in checks:
        query = states[check.id]["Parameters"]["QueryString"]
        assert f"FROM {staging_glue_name(table)}\n" in query, query
    refresh = states[f"refresh_{table.name}"]["Parameters"]["QueryString"]
    assert refresh == f"MSCK REPAIR TABLE {staging_glue_name(table)}"


# -- the CDK app -------------------------------------------------------------


def role_statements(template: dict, handler: str) -> list[dict]:
    (fn,) = [
        f
        for f in resources(template, "AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == handler
    ]
    role = fn["Properties"]["Role"]["Fn::GetAtt"][0]
    out = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            out += policy["Properties"]["PolicyDocument"]["Statement"]
    return out


def s3_object_grants(statements: list[dict]) -> dict[str, set[str]]:
    """Object prefix (s3://...) -> the actions granted on it."""
    out: dict[str, set[str]] = {}
    for st in statements:
        resources_ = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        for res in resources_:
            if isinstance(res, str) and res.startswith("arn:aws:s3:::") and res.endswith("/*"):
                location = "s3://" + res[len("arn:aws:s3:::") : -1]
                out.setdefault(location, set()).update(actions)
    return out


@pytest.mark.parametrize("layer", LAYERS)
def test_template_has_the_staging_glue_tables(synthesized: Synthesized, layer: str):
    plan = synthesized.plan
    table = the_table(plan, layer)
    template = synthesized.templates[layer_stack_name(plan, layer)]
    tables = {
        t["Properties"]["TableInput"]["Name"]: t["Properties"]["TableInput"]
        for t in resources(template, "AWS::Glue::Table").values()
    }
    live, staging = tables[table.name], tables[staging_name(table)]
    assert staging["StorageDescriptor"]["Location"] == staging_location(table)
    assert live["StorageDescriptor"]["Location"] == table.location
    for key in ("Columns", "InputFormat", "OutputFormat", "SerdeInfo"):
        assert staging["StorageDescriptor"][key] == live["StorageDescriptor"][key]
    assert staging["PartitionKeys"] == live["PartitionKeys"]
    assert staging["TableType"] == "EXTERNAL_TABLE"


@pytest.mark.parametrize("layer", LAYERS)
def test_publish_and_purge_lambdas_are_scoped_to_their_prefixes(
    synthesized: Synthesized, layer: str
):
    plan = synthesized.plan
    table = the_table(plan, layer)
    template = synthesized.templates[layer_stack_name(plan, layer)]
    staging, live = staging_location(table), table.location
    publish_grants = s3_object_grants(role_statements(template, "bakery.lambdas.publish.handler"))
    exports = [s.location or "" for s in plan.layer(layer).steps if s.kind == "export_by_key"]
    tables = staged_tables(plan, plan.layer(layer))
    writes = {
        "s3:GetObject",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
        "s3:DeleteObject",
    }
    assert publish_grants == {
        **{staging_location(t): {"s3:GetObject", "s3:DeleteObject"} for t in tables},
        **{t.location: writes for t in tables},
        **{export_staging_location(e): {"s3:GetObject", "s3:DeleteObject"} for e in exports},
        **{e: writes for e in exports},
    }
    assert publish_grants[staging] == {"s3:GetObject", "s3:DeleteObject"}
    assert live in publish_grants
    purge_grants = s3_object_grants(role_statements(template, "bakery.lambdas.purge.handler"))
    assert purge_grants == {
        staging: {"s3:DeleteObject"},
        **{export_staging_location(e): {"s3:DeleteObject"} for e in exports},
    }
    # The publish Lambda lists only the prefixes of its publish plan.
    lists = [
        st
        for st in role_statements(template, "bakery.lambdas.publish.handler")
        if st["Action"] == "s3:ListBucket"
    ]
    prefixes = sorted(p for st in lists for p in st["Condition"]["StringLike"]["s3:prefix"])
    locations = [
        *(staging_location(t) for t in tables),
        *(t.location for t in tables),
        *(export_staging_location(e) for e in exports),
        *exports,
    ]
    expected = [loc.split("/", 3)[3] for loc in locations]
    assert prefixes == sorted(expected + [p + "*" for p in expected])


@pytest.mark.parametrize("layer", LAYERS)
def test_athena_writes_staging_not_live(synthesized: Synthesized, layer: str):
    plan = synthesized.plan
    table = the_table(plan, layer)
    template = synthesized.templates[layer_stack_name(plan, layer)]
    (machine,) = resources(template, "AWS::StepFunctions::StateMachine").values()
    role = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    statements = [
        st
        for policy in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for st in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    grants = s3_object_grants(statements)
    assert "s3:PutObject" in grants[staging_location(table)]
    assert grants[table.location] == {"s3:GetObject"}  # MSCK REPAIR after publish reads only


# -- the publish Lambda against moto ---------------------------------------------


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-2")
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"}
        )
        yield client


def keys(s3, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


STAGING = "bakery-staging/addressbase/development/addressbase_partitioned/"
LIVE = "addressbase/development/addressbase_partitioned/"


def test_publish_copies_over_deletes_stale_and_clears_staging(s3):
    for i in range(1234):
        s3.put_object(
            Bucket=BUCKET, Key=f"{STAGING}first_letter={chr(65 + i % 26)}/{i:05}", Body=b"new"
        )
    for i in range(1100):  # the previous build: 1000 stale files, 100 overwritten
        s3.put_object(Bucket=BUCKET, Key=f"{LIVE}first_letter=Z/old{i:05}", Body=b"old")
    for i in range(100):
        s3.put_object(
            Bucket=BUCKET, Key=f"{LIVE}first_letter={chr(65 + i % 26)}/{i:05}", Body=b"old"
        )
    s3.put_object(
        Bucket=BUCKET, Key="addressbase/development/addressbase_partitioned_other/x", Body=b""
    )
    deletes: list[int] = []
    real = s3.delete_objects

    def counting(**kwargs):
        deletes.append(len(kwargs["Delete"]["Objects"]))
        return real(**kwargs)

    s3.delete_objects = counting
    result = publish.publish(s3, f"s3://{BUCKET}/{STAGING}", f"s3://{BUCKET}/{LIVE}")
    assert result["copied"] == 1234 and result["stale"] == 1100
    live = keys(s3, LIVE)
    assert len(live) == 1234
    assert all("old" not in k for k in live)
    sample = s3.get_object(Bucket=BUCKET, Key=f"{LIVE}first_letter=A/00000")["Body"].read()
    assert sample == b"new"  # overwritten in place
    assert keys(s3, STAGING) == []
    assert deletes == [1000, 100, 1000, 234]  # stale first, then staging, 1000 at a time
    # A sibling prefix sharing the name's start is untouched.
    assert keys(s3, "addressbase/development/addressbase_partitioned_other/") != []


def test_publish_of_an_empty_staging_empties_live(s3):
    s3.put_object(Bucket=BUCKET, Key=f"{LIVE}old", Body=b"old")
    result = publish.publish(s3, f"s3://{BUCKET}/{STAGING}", f"s3://{BUCKET}/{LIVE}")
    assert result["copied"] == 0 and result["stale"] == 1
    assert keys(s3, LIVE) == []


def test_publish_fails_loudly_on_partial_delete_errors(s3):
    s3.put_object(Bucket=BUCKET, Key=f"{STAGING}new", Body=b"new")
    s3.put_object(Bucket=BUCKET, Key=f"{LIVE}old1", Body=b"old")
    s3.put_object(Bucket=BUCKET, Key=f"{LIVE}old2", Body=b"old")

    fail_first_delete(s3)
    with pytest.raises(purge.PurgeError, match=r"could not delete 1 of 2 objects \(stale"):
        publish.publish(s3, f"s3://{BUCKET}/{STAGING}", f"s3://{BUCKET}/{LIVE}")
    # The new file was published before the failure; staging is kept for a retry.
    assert keys(s3, STAGING) == [f"{STAGING}new"]


@pytest.mark.parametrize(
    "staging,live",
    [
        (f"s3://{BUCKET}/{LIVE}", f"s3://{BUCKET}/{LIVE}"),
        (f"s3://{BUCKET}/{LIVE}x/", f"s3://{BUCKET}/{LIVE}"),
        (f"s3://{BUCKET}/{STAGING}", f"s3://{BUCKET}/"),
    ],
)
def test_publish_refuses_overlapping_or_root_locations(staging, live):
    with pytest.raises(ValueError):
        publish.publish(object(), staging, live)


def test_publish_handler(s3, monkeypatch):
    s3.put_object(Bucket=BUCKET, Key=f"{STAGING}new", Body=b"new")
    event = {
        "staging_location": f"s3://{BUCKET}/{STAGING}",
        "live_location": f"s3://{BUCKET}/{LIVE}",
    }
    result = publish.handler(event)
    assert result["copied"] == 1 and keys(s3, LIVE) == [f"{LIVE}new"]


def test_publish_deletes_nothing_when_a_copy_fails(s3):
    from botocore.exceptions import ClientError

    for name in ("a", "b", "c"):
        s3.put_object(Bucket=BUCKET, Key=f"{STAGING}{name}", Body=b"new")
    s3.put_object(Bucket=BUCKET, Key=f"{LIVE}old", Body=b"old")
    real = s3.copy_object

    def failing(**kwargs):
        if kwargs["Key"].endswith("/b"):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "CopyObject")
        return real(**kwargs)

    s3.copy_object = failing
    with pytest.raises(ClientError, match="AccessDenied"):
        publish.publish(s3, f"s3://{BUCKET}/{STAGING}", f"s3://{BUCKET}/{LIVE}")
    assert f"{LIVE}old" in keys(s3, LIVE)  # the previous build is still readable
    assert len(keys(s3, STAGING)) == 3  # staging kept for the next attempt


def test_publish_copies_only_what_changed(s3):
    s3.put_object(Bucket=BUCKET, Key=f"{STAGING}same", Body=b"same")
    s3.put_object(Bucket=BUCKET, Key=f"{STAGING}new", Body=b"new")
    s3.put_object(Bucket=BUCKET, Key=f"{LIVE}same", Body=b"same")
    s3.put_object(Bucket=BUCKET, Key=f"{LIVE}new", Body=b"old")
    copied: list[str] = []
    real = s3.copy_object

    def counting(**kwargs):
        copied.append(kwargs["Key"])
        return real(**kwargs)

    s3.copy_object = counting
    result = publish.publish(s3, f"s3://{BUCKET}/{STAGING}", f"s3://{BUCKET}/{LIVE}")
    assert copied == [f"{LIVE}new"]
    assert (result["copied"], result["unchanged"]) == (1, 1)
    assert s3.get_object(Bucket=BUCKET, Key=f"{LIVE}new")["Body"].read() == b"new"


@pytest.mark.parametrize(
    ("stale", "left"),
    [("all", []), ("key_files", ["README.txt"]), ("none", ["GONE.parquet", "README.txt"])],
)
def test_an_export_folder_keeps_what_its_stale_mode_keeps(s3, stale, left):
    s3.put_object(Bucket=BUCKET, Key=f"{STAGING}AB1.parquet", Body=b"new")
    for name in ("GONE.parquet", "README.txt"):
        s3.put_object(Bucket=BUCKET, Key=f"{LIVE}{name}", Body=b"old")
    publish.publish_all(
        s3,
        [
            {
                "staging_location": f"s3://{BUCKET}/{STAGING}",
                "live_location": f"s3://{BUCKET}/{LIVE}",
                "stale": stale,
            }
        ],
    )
    assert keys(s3, LIVE) == sorted([f"{LIVE}AB1.parquet", *(LIVE + n for n in left)])
    assert keys(s3, STAGING) == []
