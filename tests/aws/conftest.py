"""Fixtures of the AWS back-end tests: the real app synthesized once per session."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_helpers import PROJECT, REPO, Synthesized, synth_templates  # noqa: E402

from bakery.plan import Plan, build_plan  # noqa: E402
from bakery.workspace import load_workspace  # noqa: E402


@pytest.fixture(autouse=True)
def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3 in these tests talks to moto only: never real credentials or AWS."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-2",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(scope="session")
def plan() -> Plan:
    return build_plan(load_workspace(PROJECT), "development")


@pytest.fixture(scope="session")
def synthesized(plan: Plan, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The real app, with cdk-nag's AwsSolutions plugin, synthesized once."""
    from bakery.constructs import build_app

    outdir = tmp_path_factory.mktemp("cdk.out")
    build_dir = tmp_path_factory.mktemp("build")
    app, core, layers = build_app(
        plan, outdir=str(outdir), nag=True, nag_metadata=True, build_dir=build_dir
    )
    assembly = app.synth()  # raises when cdk-nag reports an error
    templates = {
        s.stack_name: json.loads(Path(s.template_full_path).read_text()) for s in assembly.stacks
    }
    stacks = {core.stack_name: core, **{s.stack_name: s for s in layers.values()}}
    report_path = outdir / "validation-report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    return Synthesized(plan, outdir, templates, stacks, layers, report)


@pytest.fixture(scope="session")
def repo_templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, dict]]:
    """env -> the repository's own layers synthesized with cdk-nag, once per session for
    production and shadow (the limits and the cut-over names tests read the same ones;
    each synth is jsii's start-up plus seconds of CDK). Read only."""
    ws = load_workspace(REPO)
    return {
        env: synth_templates(build_plan(ws, env), tmp_path_factory.mktemp(env))
        for env in ("production", "shadow")
    }


@pytest.fixture(scope="module")
def server():
    """A PostgreSQL + PostGIS of the test module's own (tests/aws/ee_postgres.py)."""
    from ee_postgres import PostgresServer

    pg = PostgresServer()
    try:
        yield pg
    finally:
        pg.stop()


@pytest.fixture(scope="module")
def everyelection(server, request: pytest.FixtureRequest) -> str:
    """EveryElection's tables on `server`, holding the test module's DATA (SQL)."""
    import psycopg
    from ee_postgres import create_everyelection

    dsn = create_everyelection(server)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(request.module.DATA)
    return dsn
