"""Fixtures for the graph, catalog and `bakery new` tests: the repository, or a copy of the
tests' own project (tests/fixtures/project), whose layers do not change with layers/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROJECT = REPO / "tests" / "fixtures" / "project"


@pytest.fixture
def repo(monkeypatch) -> Path:
    """The repository itself as the project (read only)."""
    monkeypatch.setenv("BAKERY_PROJECT", str(REPO))
    monkeypatch.delenv("DC_ENVIRONMENT", raising=False)
    return REPO


@pytest.fixture
def copy(tmp_path, monkeypatch) -> Path:
    """A copy of the tests' project (bakery.yaml, layers/) with the repository's schemas/,
    and its docs/databaker.dot + docs/catalog.md as `bakery graph` and `bakery docs` write
    them, as the cwd."""
    from bakery.catalog import render_catalog
    from bakery.graph import build_graph, to_dot
    from bakery.plan import build_plan
    from bakery.workspace import load_workspace

    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(PROJECT / "bakery.yaml", root / "bakery.yaml")
    shutil.copytree(PROJECT / "layers", root / "layers")
    shutil.copytree(REPO / "schemas", root / "schemas")
    ws = load_workspace(root)
    plans = [build_plan(ws, env) for env in ws.project.environments]
    (root / "docs").mkdir()
    (root / "docs" / "databaker.dot").write_text(to_dot(build_graph(plans[0])))
    (root / "docs" / "catalog.md").write_text(render_catalog(plans))
    monkeypatch.delenv("BAKERY_PROJECT", raising=False)
    monkeypatch.delenv("DC_ENVIRONMENT", raising=False)
    monkeypatch.chdir(root)
    return root


@pytest.fixture(scope="session")
def plan():
    """The plan of the tests' project for development."""
    from bakery.plan import build_plan
    from bakery.workspace import load_workspace

    return build_plan(load_workspace(PROJECT), "development")


@pytest.fixture(scope="session")
def repo_plan():
    """The plan of the repository's own layers (whatever they are) for development."""
    from bakery.plan import build_plan
    from bakery.workspace import load_workspace

    return build_plan(load_workspace(REPO), "development")
