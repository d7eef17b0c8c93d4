"""What holds for every layer in layers/, whatever layers the project has: it validates in
every environment, and its committed artefacts (ASL, picture, catalog) cover it.

Tests about what one real layer makes are named after it; the framework's own behaviour is
tested on tests/fixtures/project, so adding, renaming or removing a layer edits no test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bakery.plan import build_plan
from bakery.workspace import load_workspace

REPO = Path(__file__).resolve().parents[1]
LAYERS = sorted(p.stem for p in (REPO / "layers").glob("*.yaml"))


def test_the_repository_layers_validate_in_every_environment():
    ws = load_workspace(REPO)
    for env in ws.project.environments:
        assert sorted(ly.name for ly in build_plan(ws, env).layers) == LAYERS


@pytest.mark.parametrize("layer", LAYERS)
def test_each_layer_is_in_the_committed_artefacts(layer):
    hint = "run `uv run bakery synth`, `uv run bakery graph` and `uv run bakery docs`"
    assert (REPO / "build" / "asl" / f"{layer}.asl.json").is_file(), hint
    assert f"subgraph cluster_{layer} {{" in (REPO / "docs" / "databaker.dot").read_text(), hint
    assert f"## Layer {layer}\n" in (REPO / "docs" / "catalog.md").read_text(), hint
