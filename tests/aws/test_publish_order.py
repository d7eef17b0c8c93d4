"""Every compiled state machine publishes once, after every export (the publish plan,
bakery.planning.publish_plan): walked over the committed build/asl/*.asl.json, and over
every layer of the repository and of the fixture projects as compiled now.

"After" is in the graph, not in the file's order: every path from an export's states
reaches the publish state, and no state reachable from the publish state is an export's.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from aws_helpers import REPO

from bakery.compile.asl import compile_layer
from bakery.compile.staging import export_staging_location, staging_location
from bakery.plan import Plan, build_plan
from bakery.planning.publish_plan import publish_plan
from bakery.workspace import load_workspace

FIXTURES = REPO / "tests" / "fixtures"
PROJECTS = ["project", "guards", "quarantine", "ee_reviews_project", "wards", "quota"]


def _nexts(state: dict) -> list[str]:
    out = [state[k] for k in ("Next", "Default") if k in state]
    out += [c["Next"] for c in state.get("Choices", [])]
    out += [c["Next"] for c in state.get("Catch", [])]
    return out


def _reachable(states: dict[str, dict], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += _nexts(states[name])
    return seen


def _plans() -> list[Plan]:
    out = [build_plan(load_workspace(REPO), "development")]
    for name in PROJECTS:
        root = FIXTURES / name
        if (root / "bakery.yaml").is_file():
            out.append(build_plan(load_workspace(root), "development"))
    return out


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> list[Plan]:
    # the simulate fixtures are layers beside the repository's own
    root = tmp_path_factory.mktemp("sim")
    shutil.copy(REPO / "bakery.yaml", root / "bakery.yaml")
    shutil.copytree(REPO / "layers", root / "layers")
    for layer in (FIXTURES / "simulate").glob("*.yaml"):
        shutil.copy(layer, root / "layers" / layer.name)
    return [*_plans(), build_plan(load_workspace(root), "development")]


def _assert_publish_last(definition: dict, exports: list[str], where: str) -> None:
    states = definition["States"]
    assert "publish" in states, f"{where}: no publish state"
    after_publish = _reachable(states, "publish")
    for export in exports:
        assert export in states, f"{where}: no state {export}"
        reach = _reachable(states, export)
        assert "publish" in reach, f"{where}: {export} never reaches publish"
        assert export not in after_publish, f"{where}: {export} runs after publish"
    # The only way to "succeeded" is through publish: no path skips it.
    pending, seen = [definition["StartAt"]], set()
    while pending:
        name = pending.pop()
        if name in seen or name == "publish":
            continue
        seen.add(name)
        pending += _nexts(states[name])
    assert "succeeded" not in seen, f"{where}: a path succeeds without publishing"


def test_every_compiled_layer_publishes_after_every_export(plans: list[Plan]):
    checked = 0
    for plan in plans:
        for layer in plan.layers:
            pp = publish_plan(layer)
            if not pp.tables and not pp.exports:
                continue
            definition = compile_layer(plan, layer).definition
            _assert_publish_last(definition, [e.step_id for e in pp.exports], layer.file)
            payload = definition["States"]["publish"]["Parameters"]["Payload"]
            staged = [i["staging_location"] for i in payload["items"]]
            assert staged == [
                *(staging_location(plan.table(r)) for r in pp.table_refs),
                *(export_staging_location(e.destination) for e in pp.exports),
            ], layer.file
            checked += len(pp.exports)
    assert checked >= 4  # the real layers' and the fixtures' exports were among them


def test_the_committed_definitions_publish_after_every_export():
    plan = build_plan(load_workspace(REPO), "development")
    for path in sorted((REPO / "build" / "asl").glob("*.asl.json")):
        layer = plan.layer(path.name.removesuffix(".asl.json"))
        exports = [e.step_id for e in publish_plan(layer).exports]
        _assert_publish_last(json.loads(Path(path).read_text()), exports, path.name)
