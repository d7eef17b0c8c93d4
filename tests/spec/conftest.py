from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bakery.errors import SpecError
from bakery.plan import Plan, build_plan
from bakery.workspace import load_workspace

REPO = Path(__file__).resolve().parents[2]
# The framework tests' own project: independent of the layers in layers/.
PROJECT = REPO / "tests" / "fixtures" / "project"

MINI = """\
name: mini
description: test layer
steps:
  - type: glue_table
    name: mini_out
    location: s3://pollingstations.private.data/mini/{{ env }}/mini_out/
    format: parquet
    columns:
      - {name: uprn, type: string}
      - {name: postcode, type: string}
  - type: purge_prefix
    id: empty_out
    table: mini_out
  - type: athena_query
    id: fill
    sql: SELECT uprn, postcode FROM {{ ref('addressbase.addressbase_partitioned') }}
    into: mini_out
"""


class Project:
    """A throwaway copy of the tests' project (tests/fixtures/project) with a small extra
    layer 'mini'."""

    def __init__(self, root: Path):
        self.root = root

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def edit(self, relative: str, old: str, new: str) -> None:
        path = self.root / relative
        text = path.read_text()
        assert old in text, f"{old!r} not in {relative}"
        path.write_text(text.replace(old, new, 1))

    def mini(self, old: str = "", new: str = "") -> None:
        assert old in MINI
        self.write("layers/mini.yaml", MINI.replace(old, new, 1) if old else MINI)

    def plan(self, env: str = "development") -> Plan:
        return build_plan(load_workspace(self.root), env)

    def problems(self, env: str = "development") -> list[str]:
        try:
            self.plan(env)
        except SpecError as exc:
            return [str(p) for p in exc.problems]
        return []


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    root = tmp_path / "proj"
    root.mkdir()
    shutil.copy(PROJECT / "bakery.yaml", root / "bakery.yaml")
    shutil.copytree(PROJECT / "layers", root / "layers")
    monkeypatch.chdir(root)
    monkeypatch.delenv("BAKERY_PROJECT", raising=False)
    monkeypatch.delenv("DC_ENVIRONMENT", raising=False)
    p = Project(root)
    p.mini()
    return p
