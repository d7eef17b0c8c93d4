"""`bakery validate` knows AWS's limits: a name AWS would refuse at deploy, and the AWS SDK
for pandas layer's ARN, are one-line errors at the line that decides them (bakery.aws_limits)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from bakery import aws_limits
from bakery.cli.common import app

runner = CliRunner()
ARN = "arn:aws:lambda:eu-west-2:336392948345:layer:AWSSDKPandas-Python314:6"
PROJECT_ARN = f"pandas_layer_arn: {ARN}\n"
# 40 characters, the longest layer name the spec allows.
LONG = ("triggered_" + "x" * 40)[:40]


def layer(name: str) -> str:
    return f"""\
name: {name}
description: a layer started by a schedule
triggers:
  schedule: cron(0 2 * * ? *)
steps:
  - type: glue_table
    name: {name}_out
    location: s3://pollingstations.private.data/{name}/{{{{ env }}}}/
    format: parquet
    columns: [{{name: uprn, type: string}}]
  - type: athena_query
    id: fill
    sql: SELECT uprn FROM {{{{ ref('addressbase.addressbase_partitioned') }}}}
    into: {name}_out
"""


def validate(*args: str) -> tuple[int, list[str]]:
    result = runner.invoke(app, ["validate", *args], catch_exceptions=False)
    assert "Traceback" not in result.output
    return result.exit_code, result.stderr.splitlines()


def test_queue_names_over_sqs_limit_are_refused_with_name_length_and_limit(project):
    # Names per environment, as the repository's bakery.yaml has them.
    for old, new in [
        ("glue_database: dc_data_baker", "resource_prefix: bakery-long-prefix-{{ env }}\n"
         "glue_database: dc_data_baker_{{ env }}"),
        ("workgroup: dc-data-baker", "workgroup: dc-data-baker-{{ env }}"),
        ("dc-data-baker-athena-results/", "{{ env }}/athena-results/"),
    ]:  # fmt: skip
        project.edit("bakery.yaml", old, new)
    project.write(f"layers/{LONG}.yaml", layer(LONG))
    code, lines = validate()
    stack = f"bakery-long-prefix-development-{LONG.replace('_', '-')}"
    assert len(stack) == 71  # a stack and state machine name within their limits (128, 80)
    where = f"layers/{LONG}.yaml:1:1: name: "
    fix = "(environment development): shorten the layer's name or resource_prefix in bakery.yaml"
    assert lines == [
        f"{where}SQS FIFO queue name '{stack}-trigger-dlq.fifo' is 88 characters, over AWS's "
        f"limit of 80 {fix}",
        f"{where}SQS FIFO queue name '{stack}-trigger.fifo' is 84 characters, over AWS's "
        f"limit of 80 {fix}",
        "2 problems found",
    ]
    assert code == 1
    # A shorter prefix leaves room for the queues' suffixes.
    project.edit("bakery.yaml", "bakery-long-prefix-{{ env }}", "bakery-{{ env }}")
    code, lines = validate()
    assert code == 0 and lines[0].startswith("ok: 4 layers"), lines


def test_a_glue_database_name_over_255_characters_is_refused(project):
    name = "d" * 256
    project.edit("bakery.yaml", "glue_database: dc_data_baker", f"glue_database: {name}")
    code, lines = validate()
    assert code == 1
    assert lines[0] == (
        f"bakery.yaml:9:1: glue_database: Glue database name '{name}' is 256 characters, over "
        "AWS's limit of 255 (environment development): shorten it"
    )


def test_the_pandas_layer_arn_is_checked_where_it_is_written(project):
    project.edit("bakery.yaml", PROJECT_ARN, f"pandas_layer_arn: {ARN.rsplit(':', 1)[0]}\n")
    text = (project.root / "bakery.yaml").read_text()
    line = text[: text.index("pandas_layer_arn:")].count("\n") + 1
    code, lines = validate()
    assert code == 1
    assert lines == [
        f"bakery.yaml:{line}:1: pandas_layer_arn: '{ARN.rsplit(':', 1)[0]}' is not a Lambda layer "
        "version ARN (arn:aws:lambda:<region>:<account>:layer:<name>:<version>, at most 140 "
        "characters); docs/aws.md says how to look up the AWS SDK for pandas one",
        "1 problem found",
    ]


def test_each_environment_inherits_the_pandas_layer_or_replaces_it(project):
    newer = ARN.replace(":6", ":7")
    override = f"  production: {{pandas_layer_arn: '{newer}'}}"
    project.edit("bakery.yaml", "  production: {}", override)
    assert project.plan("development").project.pandas_layer_arn == ARN
    assert project.plan("staging").project.pandas_layer_arn == ARN
    assert project.plan("production").project.pandas_layer_arn == newer
    # Another region's layer cannot serve these functions: refused at the line that names it.
    other = newer.replace("eu-west-2", "eu-west-1")
    project.edit("bakery.yaml", newer, other)
    assert project.problems("production") == [
        f"bakery.yaml:8:16: environments.production.pandas_layer_arn: '{other}' is a layer in "
        "eu-west-1, but the functions run in eu-west-2 (environment production): use the "
        "eu-west-2 ARN"
    ]
    assert project.problems("development") == []


def test_a_project_whose_lambdas_need_the_pandas_layer_must_name_it(project):
    project.edit("bakery.yaml", PROJECT_ARN, "")
    code, lines = validate()
    assert code == 1
    assert lines == [
        "bakery.yaml:3:1: pandas_layer_arn: not set (environment development), and "
        "current_elections.export_ballots runs a Lambda with the AWS SDK for pandas layer: set "
        "pandas_layer_arn to its layer version ARN for eu-west-2 (docs/aws.md, 'The AWS SDK "
        "for pandas layer')",
        "1 problem found",
    ]


def test_docs_list_every_limit_with_its_source():
    docs = (Path(__file__).resolve().parents[2] / "docs" / "aws.md").read_text()
    section = docs[docs.index("## AWS limits") :]
    section = section[: section.index("\n## ", 1)]
    for limit in aws_limits.LIMITS:
        assert f"({limit.source})" in section, limit
        assert f"{limit.maximum:,}" in section, limit
    for generated in aws_limits.GENERATED.values():
        assert generated.evidence in section
