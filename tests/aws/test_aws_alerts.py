"""Alerts: a failed, timed-out or aborted execution of any layer reaches the SNS topic whose
subscriptions come from bakery.yaml, and Lambda handlers report exceptions to Sentry when
a DSN is configured. Synthesized with cdk-nag (clean), the rule's pattern exercised on
moto's EventBridge, the Sentry wrapper against a local HTTP server standing in for Sentry."""

from __future__ import annotations

import http.server
import json
import shutil
import threading
from pathlib import Path

import boto3
import pytest
from aws_helpers import resources
from moto import mock_aws

from bakery.plan import build_plan
from bakery.workspace import load_workspace

PROJECT = Path(__file__).resolve().parents[1] / "fixtures" / "project"
DSN = "https://key@sentry.example.org/42"
ALERTS = f"""
alerts:
  email: [data-team@example.org]
  https: [https://hooks.example.org/bakery]
  sentry_dsn: {DSN}
"""


@pytest.fixture(scope="module")
def alerted(tmp_path_factory):
    """The tests' project with alerts configured, synthesized for production with cdk-nag."""
    from bakery.constructs import build_app

    root = tmp_path_factory.mktemp("project")
    shutil.copy(PROJECT / "bakery.yaml", root / "bakery.yaml")
    shutil.copytree(PROJECT / "layers", root / "layers")
    with open(root / "bakery.yaml", "a") as f:
        f.write(ALERTS)
    plan = build_plan(load_workspace(root), "production")
    out = tmp_path_factory.mktemp("out")
    app, core, _ = build_app(plan, outdir=str(out / "cdk.out"), nag=True, build_dir=out / "b")
    assembly = app.synth()  # raises on any cdk-nag AwsSolutions error
    templates = {
        s.stack_name: json.loads(Path(s.template_full_path).read_text()) for s in assembly.stacks
    }
    return plan, templates, core.stack_name, out / "b" / "lambda"


def test_topic_subscriptions_come_from_bakery_yaml(alerted):
    _, templates, core, _ = alerted
    subs = resources(templates[core], "AWS::SNS::Subscription").values()
    got = sorted((s["Properties"]["Protocol"], s["Properties"]["Endpoint"]) for s in subs)
    assert got == [
        ("email", "data-team@example.org"),
        ("https", "https://hooks.example.org/bakery"),
    ]
    ((topic_id, topic),) = resources(templates[core], "AWS::SNS::Topic").items()
    assert "KmsMasterKeyId" in topic["Properties"]
    (rule,) = resources(templates[core], "AWS::Events::Rule").values()
    assert [t["Arn"] for t in rule["Properties"]["Targets"]] == [{"Ref": topic_id}]
    (key,) = resources(templates[core], "AWS::KMS::Key").values()
    assert key["Properties"]["EnableKeyRotation"] is True


def rule_pattern(templates, core: str, account: str) -> dict:
    (rule,) = resources(templates[core], "AWS::Events::Rule").values()
    pattern = rule["Properties"]["EventPattern"]
    arns = []
    for arn in pattern["detail"]["stateMachineArn"]:
        parts = arn["Fn::Join"][1]
        text = "".join(p if isinstance(p, str) else {"AWS::Partition": "aws",
                       "AWS::AccountId": account}[p["Ref"]] for p in parts)  # fmt: skip
        arns.append(text)
    return {**pattern, "detail": {**pattern["detail"], "stateMachineArn": arns}}


def event(status: str, machine: str, account: str) -> dict:
    arn = f"arn:aws:states:eu-west-2:{account}:stateMachine:{machine}"
    return {
        "Source": "aws.states",
        "DetailType": "Step Functions Execution Status Change",
        "Detail": json.dumps(
            {
                "status": status,
                "stateMachineArn": arn,
                "name": "run-1",
                "executionArn": arn.replace(":stateMachine:", ":execution:") + ":run-1",
            }  # fmt: skip
        ),
    }


def test_every_layer_failure_timeout_and_abort_is_sent_nothing_else(alerted):
    from bakery.planning.names import state_machine_name

    plan, templates, core, _ = alerted
    account = "123456789012"
    pattern = rule_pattern(templates, core, account)
    machines = [state_machine_name(plan, ly.name) for ly in plan.layers]
    assert len(pattern["detail"]["stateMachineArn"]) == len(plan.layers) >= 2
    with mock_aws():
        # The rule's pattern on moto's EventBridge; moto delivers to SQS only (not SNS),
        # so a queue stands in for the topic here.
        region = "eu-west-2"
        sqs, eb = boto3.client("sqs", region), boto3.client("events", region)
        queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        eb.put_rule(Name="alerts", EventPattern=json.dumps(pattern))
        eb.put_targets(Rule="alerts", Targets=[{"Id": "inbox", "Arn": queue_arn}])
        sent = [
            event(status, machine, account)
            for machine in machines
            for status in ("FAILED", "TIMED_OUT", "ABORTED", "SUCCEEDED", "RUNNING")
        ]
        sent.append(event("FAILED", "someone-elses-machine", account))
        for start in range(0, len(sent), 10):  # PutEvents takes at most 10
            eb.put_events(Entries=sent[start : start + 10])
        got = []
        while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
            got += [json.loads(m["Body"]) for m in batch]
            sqs.delete_message_batch(
                QueueUrl=queue,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
                ],  # fmt: skip
            )
    pairs = sorted((g["detail"]["stateMachineArn"].rsplit(":", 1)[1], g["detail"]["status"])
                   for g in got)  # fmt: skip
    want = sorted((m, s) for m in machines for s in ("FAILED", "TIMED_OUT", "ABORTED"))
    assert pairs == want


def test_handlers_run_behind_the_sentry_wrapper(alerted):
    _, templates, _, code = alerted
    functions = [
        f for t in templates.values() for f in resources(t, "AWS::Lambda::Function").values()
    ]
    assert len(functions) >= 4
    for f in functions:
        props = f["Properties"]
        env = props["Environment"]["Variables"]
        assert props["Handler"] == "bakery.lambdas.reporting.handler"
        assert env["SENTRY_DSN"] == DSN and env["BAKERY_ENVIRONMENT"] == "production"
        assert env["BAKERY_HANDLER"].startswith("bakery.lambdas.")
    assert (code / "sentry_sdk" / "__init__.py").is_file()
    assert (code / "certifi" / "cacert.pem").is_file()


def test_without_a_dsn_handlers_are_untouched(tmp_path):
    from bakery.constructs import build_app

    plan = build_plan(load_workspace(PROJECT), "development")
    app, _, _ = build_app(plan, outdir=str(tmp_path / "o"), nag=False, build_dir=tmp_path / "b")
    assembly = app.synth()
    for s in assembly.stacks:
        template = json.loads(Path(s.template_full_path).read_text())
        for f in resources(template, "AWS::Lambda::Function").values():
            assert f["Properties"]["Handler"] != "bakery.lambdas.reporting.handler"
    assert not (tmp_path / "b" / "lambda" / "sentry_sdk").exists()


class _Sentry(http.server.BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            import gzip

            body = gzip.decompress(body)
        _Sentry.received.append(body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_wrapper_reports_the_exception_to_sentry_and_reraises(monkeypatch):
    from bakery.lambdas import reporting

    server = http.server.HTTPServer(("127.0.0.1", 0), _Sentry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("SENTRY_DSN", f"http://key@127.0.0.1:{server.server_port}/7")
        monkeypatch.setenv("BAKERY_ENVIRONMENT", "shadow")
        # a real handler failing on a bad event: the purge Lambda without its prefix
        monkeypatch.setenv(reporting.HANDLER_ENV, "bakery.lambdas.purge.handler")
        monkeypatch.setattr(reporting, "_started", False)
        with pytest.raises(Exception) as err:
            reporting.handler({}, None)
        assert _Sentry.received, "nothing reached Sentry"
        text = b"".join(_Sentry.received).decode(errors="replace")
        assert type(err.value).__name__ in text
        assert '"environment":"shadow"' in text.replace(" ", "")
        assert "bakery.lambdas.purge.handler" in text
    finally:
        server.shutdown()
        import sentry_sdk

        sentry_sdk.init(dsn=None)


def test_wrapper_only_delegates_without_a_dsn(monkeypatch):
    from bakery.lambdas import reporting

    monkeypatch.delenv("SENTRY_DSN", raising=False)
    monkeypatch.setenv(reporting.HANDLER_ENV, "operator.concat")  # any (event, context) callable
    assert reporting.handler([1], [2]) == [1, 2]
