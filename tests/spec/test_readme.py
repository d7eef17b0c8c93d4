"""The README's walkthrough layer is real: it validates as written."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_readme_example_layer_validates(project):
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Adding a layer", 1)[1].split("\n## ", 1)[0]
    (layer,) = re.findall(r"```yaml\n(.*?)```", section, re.S)
    (query,) = re.findall(r"```sql\n(.*?)```", section, re.S)
    project.write("layers/polling_districts.yaml", layer)
    project.write("layers/queries/polling_districts.sql", query)
    assert project.problems() == []
    plan = project.plan()
    assert plan.layer("polling_districts").depends_on == ["addressbase"]
