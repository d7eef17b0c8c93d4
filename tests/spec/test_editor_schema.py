"""The committed JSON Schemas judge files the way an editor's YAML language server does:
every shipped layer and project file passes, and every structural mistake validate
refuses is refused by the schema too (issue 23: the schema once rejected the real layers)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import MINI, REPO
from pydantic import ValidationError
from test_validate_errors import BAD_LAYER_INPUTS

from bakery.spec import Layer

SCHEMAS = REPO / "schemas"


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _layer_files() -> list[Path]:
    roots = [REPO, *sorted(p.parent for p in (REPO / "tests" / "fixtures").rglob("bakery.yaml"))]
    files = [f for root in roots for f in sorted((root / "layers").glob("*.yaml"))]
    # Layers the tests load on their own (a single file beside the projects).
    files += [
        f
        for f in sorted((REPO / "tests" / "fixtures").rglob("*.yaml"))
        if f.parent.name != "layers" and f.name != "bakery.yaml" and "tests" not in f.parts[-2:]
    ]
    return files


def _project_files() -> list[Path]:
    return [REPO / "bakery.yaml", *sorted((REPO / "tests" / "fixtures").rglob("bakery.yaml"))]


def _errors(validator: jsonschema.Draft202012Validator, data: object) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
        for e in validator.iter_errors(data)
    ]


@pytest.mark.parametrize("path", _layer_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_layer_file_passes_the_editor_schema(path: Path) -> None:
    assert _errors(_validator("layer.schema.json"), yaml.safe_load(path.read_text())) == []


@pytest.mark.parametrize("path", _project_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_project_file_passes_the_editor_schema(path: Path) -> None:
    assert _errors(_validator("project.schema.json"), yaml.safe_load(path.read_text())) == []


def test_the_real_layers_are_among_those_checked() -> None:
    names = {p.name for p in _layer_files() if p.parent == REPO / "layers"}
    assert {"addressbase.yaml", "current_elections.yaml", "current_boundary_changes.yaml"} <= names


def test_the_schema_refuses_what_the_model_refuses_and_nothing_else() -> None:
    validator = _validator("layer.schema.json")
    refused = 0
    for case in BAD_LAYER_INPUTS:
        old, new, expected = case.values
        try:
            data = yaml.safe_load(MINI.replace(old, new, 1))
        except yaml.YAMLError:
            continue  # a YAML error: the editor's parser reports it, not the schema
        try:
            Layer.model_validate(data)
        except ValidationError:
            refused += 1
            assert _errors(validator, data), f"the schema accepts what validate refuses: {expected}"
        else:
            # A mistake only the plan can see (references, order): the file's shape is fine.
            assert _errors(validator, data) == [], expected
    assert refused >= 5, "too few structural mistakes to show the schema refuses them"


SCHEDULES = [
    "cron(0 1 * * ? *)", "cron(0 25 * * ? *)", "cron(0 1 * * *)", "rate(1 day)", "rate(5 days)",
    "rate(1 days)", "rate(0 days)", "cron(0/15 * ? * MON-FRI *)", "cron(0 1 L * ? *)",
    "cron(0 1 ? * 6#3 *)", "cron(0 1 * * * *)", "cron(0 1 ? * ? *)", "cron(60 1 * * ? *)",
    "cron(0 1 1,15 jan-mar ? 2026)", "cron(0 1 32 * ? *)", "cron(0 1 * * ? 2300)", "daily",
]  # fmt: skip
TYPES = [
    "string", "array<strin>", "array<string>", "map<string,bigint>", "decimal(10,2)",
    "struct<a:int,b:array<string>>", "strin", "varchar", "array<map<string,double>>",
]  # fmt: skip


@pytest.mark.parametrize("expr", SCHEDULES)
def test_the_schedule_pattern_says_what_check_schedule_says(expr: str) -> None:
    from bakery.cron import check_schedule, schedule_pattern

    try:
        check_schedule(expr)
        valid = True
    except ValueError:
        valid = False
    assert bool(re.search(schedule_pattern(), expr)) == valid


@pytest.mark.parametrize("text", TYPES)
def test_the_type_pattern_refuses_unknown_type_names(text: str) -> None:
    from bakery import hive_types

    try:
        hive_types.check(text)
        valid = True
    except ValueError:
        valid = False
    assert bool(re.search(hive_types.type_pattern(), text)) == valid
