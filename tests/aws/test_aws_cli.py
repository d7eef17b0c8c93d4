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
from bakery.cli import run_command
from bakery.cli.common import app
from bakery.plan import Plan, build_plan
from bakery.planning.names import core_stack_name, layer_stack_name
from bakery.workspace import load_workspace

runner = CliRunner()


def repo_plan(env: str) -> Plan:
    """The repository's own layers, whatever they are: synth runs on them."""
    return build_plan(load_workspace(REPO), env)


ROLE = "arn:aws:iam::123456789012:role/bakery-test"
BAKERY = str(Path(sys.executable).parent / "bakery")
NAME = "bakery-development-addressbase"  # what `bakery deploy` names it (bakery.yaml)

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


def already_running(deferred: bool) -> dict:
    """A singleton layer's execution that found the lock taken (bakery.compile.lock)."""
    holder = f"arn:aws:states:eu-west-2:123456789012:execution:{NAME}:nightly"
    lock = {"taken": False, "holder": holder, "expires_at": 1, "deferred": deferred}
    return {
        "StartAt": "take the lock",
        "States": {
            "take the lock": {
                "Type": "Pass",
                "Result": lock,
                "ResultPath": "$.lock",
                "Next": "already running",
            },
            "already running": {"Type": "Succeed"},
        },
    }


@pytest.mark.parametrize("deferred", [True, False])
def test_run_of_a_layer_already_running_exits_3_and_says_so(stepfunctions, deferred):
    deploy_fake(stepfunctions, already_running(deferred))
    result = runner.invoke(app, ["run", "addressbase", "--poll", "0.05"])
    assert result.exit_code == 3, result.output
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("addressbase:")]
    assert line.startswith("addressbase: already running (nightly); ")
    if deferred:
        assert "deferred: that execution runs the layer again when it ends" in line
    else:
        assert "not run again" in line


def test_run_json_of_a_layer_already_running(stepfunctions):
    deploy_fake(stepfunctions, already_running(False))
    result = runner.invoke(app, ["run", "addressbase", "--poll", "0.05", "--json"])
    final = json_line(result)
    assert (result.exit_code, final["exit_code"], final["status"]) == (3, 3, "SUCCEEDED")
    assert final["already_running"]["holder"].endswith(":nightly")


def test_run_without_a_deployed_state_machine_is_one_line(stepfunctions):
    result = runner.invoke(app, ["run", "addressbase"])
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert "not found" in result.stderr and "Traceback" not in result.stderr


def test_run_unknown_layer_is_a_usage_error():
    result = runner.invoke(app, ["run", "nope"])
    assert result.exit_code == 2
    assert "unknown layer 'nope'" in result.stderr


def json_line(result) -> dict:
    """The one line --json prints on stdout, whatever the outcome."""
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    line = json.loads(lines[0])
    assert {"layer", "status", "error"} <= line.keys()
    return line


@pytest.mark.parametrize(
    ("args", "code", "status", "error"),
    [
        (["run", "nope"], 2, "USAGE_ERROR", "unknown layer 'nope'"),
        (["run", "addressbase", "--env", "qa"], 2, "USAGE_ERROR", "unknown environment 'qa'"),
        (["run", "addressbase", "--input", "{"], 2, "USAGE_ERROR", "--input is not JSON"),
        (["run", "addressbase", "--poll", "0"], 2, "USAGE_ERROR", "--poll must be"),
        (["run", "addressbase", "--poll", "-1"], 2, "USAGE_ERROR", "--poll must be"),
        (["run", "addressbase", "--poll", "soon"], 2, "USAGE_ERROR", "--poll must be"),
        (["run", "addressbase"], 1, "ERROR", "not found"),
    ],
)
def test_run_json_prints_one_line_for_every_error(stepfunctions, args, code, status, error):
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == code, result.output
    line = json_line(result)
    assert line["status"] == status and line["exit_code"] == code
    assert line["layer"] == args[1]
    assert error in line["error"]
    # The human error stays one line on stderr.
    assert result.stderr.strip().count("\n") == 0 and error in result.stderr


def test_run_json_without_credentials_prints_one_line(monkeypatch, tmp_path: Path):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.delenv("AWS_WEB_IDENTITY_TOKEN_FILE", raising=False)
    # an earlier test in this process may have left credentials in boto3's default session
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    result = runner.invoke(app, ["run", "current_elections", "--json"])
    assert result.exit_code == 1, result.output
    line = json_line(result)
    assert line["status"] == "ERROR" and line["layer"] == "current_elections"
    assert "NoCredentialsError" in line["error"]
    assert line["execution_arn"] is None
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr


def test_run_json_success_and_failure_are_one_line(stepfunctions):
    deploy_fake(stepfunctions, FAILING)
    result = runner.invoke(app, ["run", "addressbase", "--poll", "0.05", "--json"])
    assert result.exit_code == 1
    line = json_line(result)
    assert line["status"] == "FAILED" and line["exit_code"] == 1


def test_run_poll_must_be_above_zero():
    for poll in ("0", "-0.5", "nan", "inf"):
        result = runner.invoke(app, ["run", "addressbase", "--poll", poll])
        assert result.exit_code == 2, (poll, result.output)
        assert "--poll must be a number of seconds above 0" in result.stderr
        assert result.stdout == ""


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
    assert [e["id"] for e in run_command.history_since(fake, "arn", 0)] == [1, 2, 3, 4, 5]
    assert fake.calls == [None, "t2", "t3"]
    assert [e["id"] for e in run_command.history_since(fake, "arn", 3)] == [4, 5]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["deploy", "current_elections", "--env", "staging", "--dry-run"],
            "npx --no-install cdk deploy bakery-staging-current-elections "
            "-c dc-environment=staging",
        ),
        (
            ["deploy", "--env", "production", "--approve", "--dry-run"],
            "npx --no-install cdk deploy --all -c dc-environment=production "
            "--require-approval never",
        ),
        (
            ["diff", "addressbase", "--dry-run"],
            "npx --no-install cdk diff bakery-development-addressbase "
            "-c dc-environment=development",
        ),
        # `cdk diff` covers every stack by default and has no --all (the CLI refuses it).
        (
            ["diff", "--env", "staging", "--dry-run"],
            "npx --no-install cdk diff -c dc-environment=staging",
        ),
    ],
)
def test_deploy_and_diff_dry_run_print_the_cdk_command(args, expected):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == expected


def test_the_pinned_cdk_diff_has_no_all_option():
    """What the diff command line relies on: the pinned CLI's diff refuses --all."""
    cdk = REPO / "node_modules" / ".bin" / "cdk"
    assert cdk.exists(), "the CDK CLI is not installed: run `npm ci`"
    helps = {
        action: subprocess.run(
            [str(cdk), action, "--help"], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout
        for action in ("diff", "deploy")
    }
    assert "--all" in helps["deploy"]
    assert "--all" not in helps["diff"]


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
    layers = sorted(ly.name for ly in repo_plan("development").layers)
    assert [p.name for p in asl_files] == [f"{name}.asl.json" for name in layers]
    text = asl_files[0].read_text()
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    result = asl_validate(*asl_files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("is valid") == len(layers)


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
    plan = repo_plan("staging")
    stacks = [core_stack_name(plan)] + [layer_stack_name(plan, ly.name) for ly in plan.layers]
    assert names == sorted(f"{name}.template.json" for name in stacks)
