"""The rough edges a new user met (issue 9 item 6): --version, one convention for help
placeholders, and the same defaults in the models, the JSON Schema and `bakery new`."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bakery.cli import app
from bakery.scaffold import render_files
from bakery.spec import Layer, Triggers

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()
COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands)


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"bakery {version('bakery')}\n"


@pytest.mark.parametrize("command", COMMANDS)
def test_help_placeholders_are_names_not_python_types(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    for python in ("<str>", "<int>", "<path>", "<float>", "<bool>", "list["):
        assert python not in result.stdout, (command, python)
    assert "{" not in result.stdout.splitlines()[0]  # typer's {required}... usage


def test_usage_lines_follow_click():
    assert runner.invoke(app, ["bake", "--help"]).stdout.startswith(
        "Usage: bakery bake [OPTIONS] LAYERS..."
    )
    assert runner.invoke(app, ["validate", "--help"]).stdout.startswith(
        "Usage: bakery validate [OPTIONS] [PATHS]..."
    )
    assert "  -e, --env ENV " in runner.invoke(app, ["validate", "--help"]).stdout


def test_defaults_agree_in_model_schema_and_new_layer():
    schema = json.loads((REPO / "schemas" / "layer.schema.json").read_text())
    model = {
        "singleton": Layer.model_fields["singleton"].default,
        "timeout_minutes": Layer.model_fields["timeout_minutes"].default,
        "delay_seconds": Triggers.model_fields["delay_seconds"].default,
    }
    assert schema["properties"]["singleton"]["default"] == model["singleton"]
    assert schema["properties"]["timeout_minutes"]["default"] == model["timeout_minutes"]
    triggers = schema["$defs"]["Triggers"]["properties"]
    assert triggers["delay_seconds"]["default"] == model["delay_seconds"]
    files = render_files("fresh", layers_dir="layers", buckets={"data": "b"}, source=None)
    text = files["layers/fresh.yaml"]
    written = yaml.safe_load(text)
    assert written["singleton"] == model["singleton"]
    assert written["timeout_minutes"] == model["timeout_minutes"]
    assert f"#   delay_seconds: {model['delay_seconds']}  # default" in text
