"""The spec commands as a user runs them: exit codes, one-line errors, JSON for scripts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from bakery.cli.common import app
from bakery.schema import schema_files

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_validate_ok(project):
    result = run("validate")
    assert result.exit_code == 0
    assert result.stderr.startswith("ok: 3 layers, 5 tables (development) in ")


def test_validate_reports_every_problem_on_its_own_line_and_exits_1(project):
    # Shape problems in every file are reported together ...
    project.mini("    table: mini_out", "    tabel: mini_out")
    project.edit("layers/current_elections.yaml", "events: [elections_set_changed]", "evnts: []")
    result = run("validate")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines == [
        "layers/current_elections.yaml:12:3: triggers.evnts: unknown field 'evnts'; "
        "did you mean 'events'?",
        "layers/mini.yaml:13:5: steps[1].tabel: unknown field 'tabel'; did you mean 'table'?",
        "2 problems found",
    ]
    # ... and once every file has a valid shape, every cross-file problem is.
    project.mini("SELECT uprn, postcode", "SELECT uprn, postcod")
    project.edit("layers/current_elections.yaml", "evnts: []", "events: []")
    project.edit("layers/addressbase.yaml", "column: addressbase_source}", "column: source}")
    result = run("validate")
    lines = result.stderr.splitlines()
    assert result.exit_code == 1 and lines[-1] == "2 problems found"
    assert lines[0].startswith(
        "layers/addressbase.yaml:53:65: steps[4].check.column: table "
        "'addressbase.addressbase_partitioned' has no column 'source'"
    )
    assert lines[1].startswith("layers/mini.yaml:16:5: steps[2].sql: column 'postcod' is not")
    assert "Traceback" not in result.output


def test_validate_given_paths(project):
    result = run("validate", "layers/mini.yaml", "layers/queries/addressbase_partitioned.sql")
    assert result.exit_code == 0
    result = run("validate", "layers/missing.yaml")
    assert result.exit_code == 2
    assert result.stderr == "bakery: error: no such file: layers/missing.yaml\n"


def test_validate_a_layer_outside_the_layers_folder(project, tmp_path):
    extra = tmp_path / "elsewhere.yaml"
    extra.write_text("name: elsewhere\n")
    result = run("validate", str(extra))
    assert result.exit_code == 1
    assert "elsewhere.yaml:1:1: description: required field 'description' is missing" in (
        result.stderr
    )


def test_unknown_environment_is_a_usage_error(project):
    result = run("validate", "--env", "prod")
    assert result.exit_code == 2
    assert result.stderr == (
        "bakery: error: unknown environment 'prod'; use one of: development, staging, production\n"
    )


def test_all_environments(project):
    result = run("validate", "--all-envs")
    assert result.exit_code == 0
    assert "(development, staging, production)" in result.stderr


def test_no_project_here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BAKERY_PROJECT", raising=False)
    result = run("validate")
    assert result.exit_code == 2
    assert result.stderr == (
        f"bakery: error: no bakery.yaml in {tmp_path.resolve()} or above: run bakery inside a "
        "project, or set BAKERY_PROJECT to its folder\n"
    )


def test_describe_json_is_stable_and_resolved(project):
    result = run("describe", "--json", "--env", "production")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["order"] == ["addressbase", "current_elections", "mini"]
    layers = {ly["name"]: ly for ly in data["layers"]}
    ce = layers["current_elections"]
    assert ce["depends_on"] == ["addressbase"]
    assert ce["singleton"] is True
    assert ce["triggers"] == {
        "schedule": "cron(0 1 * * ? *)",
        "events": ["elections_set_changed"],
        "delay_seconds": 300,
    }
    tables = {t["name"]: t for t in ce["tables"]}
    joined = tables["current_ballots_joined_to_address_base"]
    assert joined["location"] == (
        "s3://pollingstations.private.data/addressbase/production/"
        "current_ballots_joined_to_address_base/"
    )
    assert joined["format"] == "parquet"
    assert [c["name"] for c in joined["partition_keys"]] == ["first_letter"]
    assert {"name": "ballot_ids", "type": "array<string>"}.items() <= joined["columns"][-1].items()
    raw = {t["name"]: t for t in layers["addressbase"]["tables"]}["addressbase_cleaned_raw"]
    assert raw["external"] is True
    assert raw["location"].endswith("/addressbase/2026-02-02/addressbase_cleaned/")
    assert raw["read_by"] == [
        "addressbase.partition_addressbase",
        "addressbase.same_uprns_as_raw",
        "current_elections.same_uprns_as_raw",
    ]
    assert [s["id"] for s in ce["steps"]] == [
        "empty_joined",
        "export_ballots",
        "join_ballots_to_addresses",
        "refresh_current_ballots_joined_to_address_base",
        "one_addressbase_source",
        "same_uprns_as_raw",
        "export_outcodes_unique",
        "export_outcodes_not_vanished",
        "export_outcodes",
    ]
    # stable: the same specs give the same bytes
    assert run("describe", "--json", "--env", "production").stdout == result.stdout


def test_describe_one_layer_and_unknown_layer(project):
    result = run("describe", "addressbase", "--json")
    assert [ly["name"] for ly in json.loads(result.stdout)["layers"]] == ["addressbase"]
    result = run("describe", "adressbase")
    assert result.exit_code == 2
    assert result.stderr == (
        "bakery: error: unknown layer 'adressbase'; did you mean 'addressbase'? "
        "(layers: addressbase, current_elections, mini)\n"
    )


def test_describe_text(project):
    result = run("describe")
    assert result.exit_code == 0
    assert "addressbase_partitioned" in result.stdout
    assert "s3://pollingstations.private.data/addressbase/development/" in result.stdout


def test_committed_schemas_are_current():
    for name, text in schema_files().items():
        assert (REPO / "schemas" / name).read_text() == text, f"run `bakery schema` ({name})"


def test_schema_check_detects_stale(tmp_path):
    assert run("schema", "--out", str(tmp_path)).exit_code == 0
    assert run("schema", "--out", str(tmp_path), "--check").exit_code == 0
    (tmp_path / "layer.schema.json").write_text("{}")
    assert run("schema", "--out", str(tmp_path), "--check").exit_code == 1


def test_every_layer_file_has_the_schema_modeline():
    for path in sorted((REPO / "layers").glob("*.yaml")):
        first = path.read_text().splitlines()[0]
        assert first == "# yaml-language-server: $schema=../schemas/layer.schema.json", path


def test_validate_imports_nothing_from_aws_cdk():
    code = (
        "import sys\n"
        "from bakery.cli import main\n"
        "sys.argv = ['bakery', 'validate']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('aws_cdk', 'jsii', 'constructs', 'duckdb', 'pygraphviz', 'boto3'))\n"
        "print(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_help_answers():
    result = run("--help")
    assert result.exit_code == 0
    for command in ("validate", "schema", "describe"):
        assert command in result.stdout
    result = run("validate", "--help")
    assert "FILE:LINE:COL" in result.stdout


def test_pre_commit_runs_on_the_repository(tmp_path):
    """The repository's own hooks pass on a copy of it (ruff, format, bakery validate)."""
    copy = tmp_path / "repo"
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, files):
        source = REPO / name.decode()
        if source.is_file():
            target = copy / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    for name in (".pre-commit-config.yaml", ".pre-commit-hooks.yaml"):
        shutil.copy2(REPO / name, copy / name)
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(REPO / ".venv"),
        "UV_NO_SYNC": "1",
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
    }
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=copy, check=True)
    subprocess.run([*git, "add", "-A"], cwd=copy, check=True)
    result = subprocess.run(
        [str(REPO / ".venv" / "bin" / "pre-commit"), "run", "--all-files"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "bakery validate" in result.stdout and "Passed" in result.stdout
    # and it catches a broken layer
    layer = copy / "layers" / "addressbase.yaml"
    layer.write_text(layer.read_text().replace("format: parquet", "format: orc"))
    result = subprocess.run(
        [str(REPO / ".venv" / "bin" / "pre-commit"), "run", "--all-files"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "layers/addressbase.yaml:27:5: steps[1].format: Input should be 'csv' or 'parquet'" in (
        result.stdout
    )


def test_an_unexpected_failure_is_one_line_not_a_traceback(project, tmp_path):
    # A command that fails in a way no command expects: the last-resort handler of the
    # real entry point must still print one line.
    script = (
        "from bakery import cli\n"
        "from bakery.cli.common import app\n"
        "@app.command('explode')\n"
        "def explode() -> None:\n"
        "    raise RuntimeError('kaput\\nsecond line')\n"
        "cli.main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, "explode"], capture_output=True, text=True
    )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("bakery: error: RuntimeError: kaput ")
    assert "Traceback" not in result.stderr
    assert lines[0].endswith("(BAKERY_DEBUG=1 shows the traceback)")
