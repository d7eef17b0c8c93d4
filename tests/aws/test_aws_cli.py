"""bakery run against moto's Step Functions; deploy/diff --dry-run; synth twice, byte for byte."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from aws_helpers import REPO, asl_validate
from moto import mock_aws
from typer.testing import CliRunner

import bakery.cli  # noqa: F401  (registers every command on the app)
from bakery.cli import aws_commands
from bakery.cli.common import app

runner = CliRunner()
ROLE = "arn:aws:iam::123456789012:role/bakery-test"
BAKERY = str(Path(sys.executable).parent / "bakery")
NAME = "dc-data-baker-addressbase-development"  # what `bakery deploy` names it

PASSING = {
    "StartAt": "prepare",
    "States": {
        "prepare": {
            "Type": "Pass",
            "Result": {"ok": True},
            "ResultPath": "$.prep",
            "Next": "pause",
        },
        "pause": {"Type": "Wait", "Seconds": 1, "Next": "done"},
        "done": {"Type": "Succeed"},
    },
}
FAILING = {
    "StartAt": "prepare",
    "States": {
        "prepare": {"Type": "Pass", "Next": "same_uprns_as_raw did not hold"},
        "same_uprns_as_raw did not hold": {
            "Type": "Fail",
            "Error": "addressbase.same_uprns_as_raw failed",
            "Cause": "left_count 10 right_count 9",
        },
    },
}


@pytest.fixture
def stepfunctions():
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield boto3.client("stepfunctions", region_name="eu-west-2")


def deploy_fake(sfn, definition: dict, name: str = NAME) -> str:
    return sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)[
        "stateMachineArn"
    ]


def test_run_follows_a_succeeding_execution(stepfunctions):
    deploy_fake(stepfunctions, PASSING)
    result = runner.invoke(
        app, ["run", "addressbase", "--env", "development", "--poll", "0.05", "--json"]
    )
    assert result.exit_code == 0, result.output
    final = json.loads(result.stdout.strip().splitlines()[-1])
    assert final["status"] == "SUCCEEDED"
    assert final["layer"] == "addressbase"
    assert final["execution_arn"].startswith(
        "arn:aws:states:eu-west-2:123456789012:execution:" + NAME
    )


def test_run_shows_state_transitions(stepfunctions):
    deploy_fake(stepfunctions, PASSING)
    result = runner.invoke(app, ["run", "addressbase", "--poll", "0.05"])
    assert result.exit_code == 0, result.output
    err = result.stderr
    for state in ("prepare", "pause", "done"):
        assert state in err
    assert err.index("prepare") < err.index("pause") < err.index("done")
    assert "addressbase: SUCCEEDED" in result.stdout


def test_run_exits_1_and_names_the_failed_step(stepfunctions):
    deploy_fake(stepfunctions, FAILING)
    result = runner.invoke(app, ["run", "addressbase", "--poll", "0.05", "--json"])
    assert result.exit_code == 1
    final = json.loads(result.stdout.strip().splitlines()[-1])
    assert final["status"] == "FAILED"
    assert final["error"] == "addressbase.same_uprns_as_raw failed"
    assert "right_count 9" in final["cause"]


def test_run_without_a_deployed_state_machine_is_one_line(stepfunctions):
    result = runner.invoke(app, ["run", "addressbase"])
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert "not found" in result.stderr and "Traceback" not in result.stderr


def test_run_unknown_layer_is_a_usage_error():
    result = runner.invoke(app, ["run", "nope"])
    assert result.exit_code == 2
    assert "unknown layer 'nope'" in result.stderr


def test_history_is_read_over_every_page():
    class Pages:
        def __init__(self):
            self.calls = []

        def get_execution_history(self, **kwargs):
            self.calls.append(kwargs.get("nextToken"))
            events = [{"id": i, "type": "PassStateEntered"} for i in range(1, 6)]
            token = kwargs.get("nextToken")
            if token is None:
                return {"events": events[:2], "nextToken": "t2"}
            if token == "t2":
                return {"events": events[2:4], "nextToken": "t3"}
            return {"events": events[4:]}

    fake = Pages()
    assert [e["id"] for e in aws_commands.history_since(fake, "arn", 0)] == [1, 2, 3, 4, 5]
    assert fake.calls == [None, "t2", "t3"]
    assert [e["id"] for e in aws_commands.history_since(fake, "arn", 3)] == [4, 5]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["deploy", "current_elections", "--env", "staging", "--dry-run"],
            "npx --no-install cdk deploy dc-data-baker-current-elections-staging "
            "-c dc-environment=staging",
        ),
        (
            ["deploy", "--env", "production", "--approve", "--dry-run"],
            "npx --no-install cdk deploy --all -c dc-environment=production "
            "--require-approval never",
        ),
        (
            ["diff", "addressbase", "--dry-run"],
            "npx --no-install cdk diff dc-data-baker-addressbase-development "
            "-c dc-environment=development",
        ),
    ],
)
def test_deploy_and_diff_dry_run_print_the_cdk_command(args, expected):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == expected


def test_deploy_unknown_layer_or_env_is_a_usage_error():
    assert runner.invoke(app, ["deploy", "nope", "--dry-run"]).exit_code == 2
    assert runner.invoke(app, ["diff", "--env", "qa", "--dry-run"]).exit_code == 2


def test_synth_twice_is_byte_identical_and_asl_validates(tmp_path: Path):
    """The CLI end to end, twice: the same cloud assembly and ASL files, byte for byte."""
    outputs = []
    for run in ("a", "b"):
        out, asl = tmp_path / run / "cdk.out", tmp_path / run / "asl"
        done = subprocess.run(
            [BAKERY, "synth", "--env", "development", "--no-nag",
             "--out", str(out), "--asl-dir", str(asl)],
            cwd=REPO, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        files = {
            p.relative_to(tmp_path / run).as_posix(): p.read_bytes()
            for p in [*out.rglob("*"), *asl.glob("*.asl.json")]
            if p.is_file()
        }
        outputs.append(files)
    assert outputs[0] == outputs[1]
    asl_files = sorted((tmp_path / "a" / "asl").glob("*.asl.json"))
    assert [p.name for p in asl_files] == ["addressbase.asl.json", "current_elections.asl.json"]
    text = asl_files[0].read_text()
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    result = asl_validate(*asl_files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("is valid") == 2


def test_the_standard_cdk_cli_synthesizes_the_app(tmp_path: Path):
    """cdk.json runs app.py through uv; the environment comes from -c dc-environment."""
    cdk = REPO / "node_modules" / ".bin" / "cdk"
    assert cdk.exists(), "the CDK CLI is not installed: run `npm ci`"
    out = tmp_path / "cdk.out"
    done = subprocess.run(
        [str(cdk), "synth", "-q", "-c", "dc-environment=staging", "-o", str(out)],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    names = sorted(p.name for p in out.glob("*.template.json"))
    assert names == [
        "dc-data-baker-addressbase-staging.template.json",
        "dc-data-baker-core-staging.template.json",
        "dc-data-baker-current-elections-staging.template.json",
    ]
