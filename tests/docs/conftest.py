"""Fixtures for the graph, catalog and `bakery new` tests: the real project, or a copy of it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo(monkeypatch) -> Path:
    """The repository itself as the project (read only)."""
    monkeypatch.setenv("BAKERY_PROJECT", str(REPO))
    monkeypatch.delenv("DC_ENVIRONMENT", raising=False)
    return REPO


@pytest.fixture
def copy(tmp_path, monkeypatch) -> Path:
    """A copy of the project's specs (bakery.yaml, layers/, schemas/, docs/) as the cwd."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO / "bakery.yaml", root / "bakery.yaml")
    for folder in ("layers", "schemas", "docs"):
        if (REPO / folder).is_dir():
            shutil.copytree(REPO / folder, root / folder)
    monkeypatch.delenv("BAKERY_PROJECT", raising=False)
    monkeypatch.delenv("DC_ENVIRONMENT", raising=False)
    monkeypatch.chdir(root)
    return root


@pytest.fixture(scope="session")
def plan():
    """The plan of the real project for development."""
    from bakery.plan import build_plan
    from bakery.workspace import load_workspace

    return build_plan(load_workspace(REPO), "development")
