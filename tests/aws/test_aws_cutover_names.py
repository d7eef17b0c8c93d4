"""Living beside the running Data Baker: `bakery synth --env shadow` and `--env production`
name nothing the running system owns and nothing of each other, and the shadow writes
only under prefixes of its own while reading production's inputs.

The running system's names are the ones /work/shared/ documents (design.md, "Domain
facts"; seed/README.original.md): they are written out here, not guessed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bakery.plan import build_plan
from bakery.workspace import load_workspace

REPO = Path(__file__).resolve().parents[2]

RUNNING_GLUE_DATABASE = "dc_data_baker"
RUNNING_NAMES = {
    RUNNING_GLUE_DATABASE,  # the one Glue database
    "dc-data-baker",  # the Athena workgroup
    # its tables (design.md, layers addressbase and current_elections)
    *(
        f"{RUNNING_GLUE_DATABASE}.{t}"
        for t in (
            "addressbase_cleaned_raw",
            "addressbase_partitioned",
            "current_ballots_joined_to_address_base",
        )
    ),
    # its shared Lambda functions (seed/README.original.md)
    "run_athena_query_and_report_status",
    "empty_s3_bucket_by_prefix",
}
# What the running system writes in S3, in any of its environments (design.md).
RUNNING_OUTPUTS = [
    "arn:aws:s3:::dc-data-baker-results-bucket/dc-data-baker-athena-results/",
    "arn:aws:s3:::ee.data-cache.production/ballots-with-wkt/",
    *(
        f"arn:aws:s3:::pollingstations.private.data/addressbase/{env}/{t}/"
        for env in ("development", "staging", "production")
        for t in (
            "addressbase_partitioned",
            "current_ballots_joined_to_address_base",
            "current_elections_parquet",
        )
    ),
]
# Where an explicitly named resource keeps its name; anything else CloudFormation names
# from the stack's name (<stack>-<logical id>-<random>).
NAME_PROPERTIES = {
    "AWS::Glue::Database": lambda p: p["DatabaseInput"]["Name"],
    "AWS::Glue::Table": lambda p: f"{p['DatabaseName']}.{p['TableInput']['Name']}",
    "AWS::Athena::WorkGroup": lambda p: p["Name"],
    "AWS::StepFunctions::StateMachine": lambda p: p["StateMachineName"],
}
GENERATED = (
    "AWS::Lambda::Function", "AWS::SQS::Queue", "AWS::Logs::LogGroup", "AWS::Events::Rule",
    "AWS::Pipes::Pipe", "AWS::IAM::Role", "AWS::SNS::Topic",
)  # fmt: skip
NAME_KEYS = ("FunctionName", "QueueName", "LogGroupName", "Name", "RoleName", "TopicName")
# Named by bakery after the layer's stack (bakery/planning/names.py): the trigger queues,
# the state machine's execution log group.
NAMED_BY_BAKERY = {"AWS::SQS::Queue": ["QueueName"], "AWS::Logs::LogGroup": ["LogGroupName"]}


@pytest.fixture(scope="module")
def templates(repo_templates) -> dict[str, dict[str, dict]]:
    return {env: repo_templates[env] for env in ("shadow", "production")}


def physical_names(stacks: dict[str, dict]) -> set[str]:
    names = set(stacks)
    for stack, template in stacks.items():
        for logical, resource in template["Resources"].items():
            kind, props = resource["Type"], resource.get("Properties", {})
            if kind in NAME_PROPERTIES:
                names.add(NAME_PROPERTIES[kind](props))
            elif kind in GENERATED:
                given = [k for k in NAME_KEYS if isinstance(props.get(k), str)]
                if given and given == NAMED_BY_BAKERY.get(kind):
                    names.add(props[given[0]])
                    continue
                assert not given, f"{stack}/{logical} names itself ({given}); leave it to the stack"
    return names


def s3_writes(stacks: dict[str, dict]) -> set[str]:
    """Every S3 object ARN (prefix*) an IAM policy lets the stacks put or delete."""
    out = set()
    for template in stacks.values():
        for resource in template["Resources"].values():
            if resource["Type"] != "AWS::IAM::Policy":
                continue
            for st in resource["Properties"]["PolicyDocument"]["Statement"]:
                actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                if not any(re.match(r"s3:(Put|Delete)", a) for a in actions):
                    continue
                arns = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
                for arn in arns:
                    assert isinstance(arn, str) and arn.endswith("*"), arn
                    out.add(arn.rstrip("*"))
    return out


def overlaps(a: str, b: str) -> bool:
    return a.startswith(b) or b.startswith(a)


def test_names_collide_with_nothing_the_running_system_owns(templates):
    for env, stacks in templates.items():
        names = physical_names(stacks)
        assert not names & RUNNING_NAMES, env
        assert all(n.startswith(f"bakery-{env}-") for n in stacks), sorted(stacks)
        assert f"bakery_{env}" in names and f"bakery-{env}" in names


def test_shadow_and_production_share_no_name(templates):
    shadow, production = (physical_names(templates[e]) for e in ("shadow", "production"))
    assert len(shadow) > 10 and len(production) > 10
    assert not shadow & production


def test_shadow_writes_only_under_its_own_prefixes(templates):
    shadow = s3_writes(templates["shadow"])
    production = s3_writes(templates["production"])
    assert any("/current_elections_parquet/" in arn for arn in shadow)
    assert any(arn.startswith("arn:aws:s3:::ee.data-cache.production/") for arn in shadow)
    for arn in shadow:
        assert "shadow" in arn, arn
        for other in [*production, *RUNNING_OUTPUTS]:
            assert not overlaps(arn, other), (arn, other)


def test_production_writes_the_products_the_apis_read(templates):
    """After the switch the APIs read the same keys: production writes where the running
    system writes its per-outcode files and the ballots CSV (EveryElection's own key)."""
    production = s3_writes(templates["production"])
    for output in (
        "arn:aws:s3:::pollingstations.private.data/addressbase/production/current_elections_parquet/",
        "arn:aws:s3:::ee.data-cache.production/ballots-with-wkt/",
    ):
        assert output in production


def test_shadow_reads_productions_inputs():
    ws = load_workspace(REPO)
    plans = {env: build_plan(ws, env) for env in ("shadow", "production")}
    external = {
        env: sorted(t.location for t in plan.tables.values() if t.external)
        for env, plan in plans.items()
    }
    assert external["shadow"] == external["production"] and external["shadow"]
    ee = {
        env: [s.spec.ssm_parameters for ly in plan.layers for s in ly.walk() if s.kind == "lambda"]
        for env, plan in plans.items()
    }
    assert ee["shadow"] == ee["production"]
    assert {"DATABASE_HOST": "/EveryElectionProd/DATABASE_HOST"}.items() <= ee["shadow"][0].items()
