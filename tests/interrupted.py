"""Helpers shared by the tests that kill or interrupt a bake or a simulate mid-publish
(tests/local/test_sigterm.py, tests/aws/test_simulate_nothing_lost.py): the signalling
child (tests/local/signal_child.py), the publish points it reports, and what a store
shows afterwards. A plain module, imported as `tests.interrupted`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from bakery.engine.publish import STAGING
from bakery.store import LocalStore

REPO = Path(__file__).resolve().parents[1]
PROJECT = REPO / "tests" / "fixtures" / "project"
CHILD = REPO / "tests" / "local" / "signal_child.py"
PARTITIONED = "addressbase.addressbase_partitioned"
_POINT = re.compile(r"^publish operation (\d+): (\w+) (.*)$", re.M)


def run_child(args: list[str], **env: str) -> subprocess.CompletedProcess:
    """`bakery ARGS` on the tests' project through signal_child.py ($BAKERY_TEST_SIGNAL,
    $BAKERY_TEST_SIGNAL_AT in `env`)."""
    return subprocess.run(
        [sys.executable, str(CHILD), *args],
        cwd=REPO,
        env={**os.environ, "BAKERY_PROJECT": str(PROJECT), **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def publish_points(stderr: str) -> list[tuple[int, str]]:
    """(N, kind) of each operation a child run with BAKERY_TEST_SIGNAL_AT=0 printed; the
    kind is the call and what it acts on (the journal, a published folder, a replaced
    copy, staging)."""
    points = []
    for n, call, path in _POINT.findall(stderr):
        name = Path(path).name
        if ".publish.json" in name:
            what = "journal"
        elif ".old-" in name:
            what = "replaced copy"
        elif STAGING in path:
            what = "staging"
        else:
            what = "published folder"
        points.append((int(n), f"{call} {what}"))
    assert [n for n, _ in points] == list(range(1, len(points) + 1)), stderr
    return points


def points_to_walk(points: list[tuple[int, str]]) -> list[int]:
    """Every point up to the commit (the journal deleted): each one changes what a
    rollback must undo. After it only clean-up is left, the same call repeated per
    table or bucket: the first of each kind is walked."""
    commit = next(n for n, kind in points if kind == "unlink journal")
    seen: set[str] = set()
    walk = []
    for n, kind in points:
        if n <= commit or kind not in seen:
            walk.append(n)
        seen.add(kind)
    return walk


def partitioned_rows(store: LocalStore, plan) -> list[tuple] | None:
    """The published partitioned table's rows (None when its folder is missing)."""
    folder = store.path(plan.table(PARTITIONED).location)
    if not folder.is_dir():
        return None
    out: list[tuple] = []
    for path in sorted(folder.rglob("*.parquet")):
        if not any(p.startswith(".") for p in path.relative_to(folder).parts):
            out += [tuple(r.values()) for r in pq.read_table(path).to_pylist()]
    return sorted(out, key=repr)


def hidden(root: Path) -> list[str]:
    """What a run leaves besides published data: staging, journals, old copies."""
    return sorted(
        p.relative_to(root).as_posix() for p in root.rglob(".*") if p.name != ".bakery.lock"
    )
