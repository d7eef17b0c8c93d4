"""The README's walkthrough layer is real: its files validate as written, its layer test
passes, and it does what its description says."""

from __future__ import annotations

import re
from pathlib import Path

from bakery import layer_tests

REPO = Path(__file__).resolve().parents[2]


def readme_files() -> dict[str, str]:
    """The fenced blocks of "Adding a layer" that name a file (```yaml title=PATH)."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Adding a layer", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"```\w+ title=(\S+)\n(.*?)```", section, re.S))


def test_readme_example_layer_validates_and_its_test_passes(project):
    files = readme_files()
    assert sorted(files) == [
        "layers/polling_districts.yaml",
        "layers/queries/polling_districts.sql",
        "layers/samples/polling_districts.csv",
        "layers/tests/polling_districts.yaml",
    ]
    for path, text in files.items():
        project.write(path, text)
    assert project.problems() == []
    plan = project.plan()
    assert plan.layer("polling_districts").depends_on == ["addressbase"]
    tests = layer_tests.discover(project.root, "layers", ["polling_districts"])
    layer_tests.check(plan, tests)
    outcomes = [layer_tests.run(plan, t) for t in tests]
    assert [o.ok for o in outcomes] == [True], [layer_tests.explain(o) for o in outcomes]


def test_readme_lists_every_command_and_file_to_commit():
    section = (REPO / "README.md").read_text().split("## Adding a layer", 1)[1]
    section = section.split("\n## ", 1)[0]
    for command in ("validate", "test polling_districts", "render polling_districts",
                    "bake polling_districts", "synth", "graph", "docs"):  # fmt: skip
        assert f"uv run bakery {command}" in section, command
    for path in (*readme_files(), "build/asl/polling_districts.asl.json", "databaker.png",
                 "docs/databaker.dot", "docs/catalog.md"):  # fmt: skip
        assert f"`{path}`" in section, path
