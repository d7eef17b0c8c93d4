"""pytest collects layer tests: every <layers_dir>/tests/*.yaml of a bakery project becomes
one pytest item per test, run with bakery/layer_tests.py (the same as `bakery test`).

Enabled by `-p bakery.pytest_plugin` in pyproject.toml's pytest addopts,
with `layers` in pytest's testpaths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bakery import layer_tests

_PLANS: dict[Path, Any] = {}
_CON: list[Any] = []  # one DuckDB connection for every layer test of the session


def _con() -> Any:
    if not _CON:
        from bakery.engine import duck

        _CON.append(duck.connect())
    return _CON[0]


def pytest_sessionfinish(session: pytest.Session) -> None:
    while _CON:
        _CON.pop().close()


def _project_root(path: Path) -> Path | None:
    """The project whose <layers_dir>/tests/ holds this file, if any."""
    if path.suffix != ".yaml" or path.parent.name != layer_tests.TESTS_DIR:
        return None
    for folder in path.parents:
        if (folder / "bakery.yaml").is_file():
            return folder
    return None


def _plan(root: Path) -> Any:
    if root not in _PLANS:
        from bakery.plan import build_plan
        from bakery.workspace import load_workspace

        _PLANS[root] = build_plan(load_workspace(root), "development")
    return _PLANS[root]


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    root = _project_root(file_path)
    if root is None:
        return None
    from bakery.workspace import load_project

    project, _ = load_project(root)
    if file_path.resolve() not in {
        p.resolve() for p in layer_tests.test_paths(root, project.layers_dir)
    }:
        return None
    return LayerTestFile.from_parent(parent, path=file_path, root=root)


class LayerTestFile(pytest.File):
    def __init__(self, *, root: Path, **kwargs: Any):
        super().__init__(**kwargs)
        self.root = root

    def collect(self) -> Any:
        plan = _plan(self.root)
        project = plan.project
        tests = [
            t
            for t in layer_tests.discover(self.root, project.layers_dir)
            if t.path.resolve() == self.path.resolve()
        ]
        layer_tests.check(plan, tests)
        for test in tests:
            yield LayerTestItem.from_parent(self, name=test.id, test=test)


class LayerTestFailed(Exception):
    pass


class LayerTestItem(pytest.Item):
    def __init__(self, *, test: layer_tests.LayerTest, **kwargs: Any):
        super().__init__(**kwargs)
        self.test = test

    def runtest(self) -> None:
        assert isinstance(self.parent, LayerTestFile)
        outcome = layer_tests.run(_plan(self.parent.root), self.test, _con())
        if not outcome.ok:
            raise LayerTestFailed("\n".join(layer_tests.explain(outcome)))

    def repr_failure(self, excinfo: Any, style: Any = None) -> str:
        if isinstance(excinfo.value, LayerTestFailed):
            return f"layer test {self.test.id} failed:\n{excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.test.line - 1, f"layer test {self.test.id}"
