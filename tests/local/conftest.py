"""Fixtures for the local engine tests: the plan of the tests' own project
(tests/fixtures/project, independent of layers/) or of the repository's layers, temporary
stores, small hand-made or generated inputs, and helpers to read what a bake published."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from bakery.plan import Plan, build_plan
from bakery.store import LocalStore
from bakery.workspace import load_workspace

REPO = Path(__file__).resolve().parents[2]
PROJECT = REPO / "tests" / "fixtures" / "project"
RAW = "addressbase.addressbase_cleaned_raw"
BALLOTS = "current_elections.current_ballots"
PARTITIONED = "addressbase.addressbase_partitioned"
JOINED = "current_elections.current_ballots_joined_to_address_base"


def bakery_process(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`bakery ARGS` as a process with a timeout: a regression that blocks on a FIFO or
    reads /dev/zero fails the test in seconds instead of hanging the suite."""
    command = [sys.executable, "-c", "from bakery.cli import main; main()", *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def plan() -> Plan:
    """The framework tests' project: adding a layer to layers/ does not change it."""
    return build_plan(load_workspace(PROJECT), "development")


@pytest.fixture(scope="session")
def repo_plan() -> Plan:
    """The repository's own layers, for the tests about what a real layer makes."""
    return build_plan(load_workspace(REPO), "development")


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def export_location(plan: Plan, layer: str = "current_elections") -> str:
    step = next(s for s in plan.layer(layer).walk() if s.kind == "export_by_key")
    return step.location


def write_inputs(plan: Plan, store, addresses: list[tuple], ballots: list[tuple]) -> None:
    """Hand-made inputs: addresses (uprn, address, postcode, location, type) as a
    headerless CSV, ballots (election_id, division_id, geometry, source_table)."""
    import csv

    raw = io.StringIO()
    csv.writer(raw, lineterminator="\n").writerows(addresses)
    store.write_bytes(plan.table(RAW).location + "raw.csv", raw.getvalue().encode())
    bal = io.StringIO()
    w = csv.writer(bal, lineterminator="\n")
    w.writerow(["election_id", "division_id", "geometry", "source_table"])
    w.writerows(ballots)
    store.write_bytes(
        plan.table(BALLOTS).location + "current_elections.csv", bal.getvalue().encode()
    )


def read_joined(store: LocalStore, plan: Plan) -> dict[str, dict]:
    """uprn -> row of the published joined table (partition folder name included)."""
    import duckdb

    path = store.path(plan.table(JOINED).location)
    rows = duckdb.sql(
        f"SELECT * FROM read_parquet('{path}/**/*.parquet', hive_partitioning=true)"
    ).fetchall()
    cols = [c for c in duckdb.sql(
        f"SELECT * FROM read_parquet('{path}/**/*.parquet', hive_partitioning=true) LIMIT 0"
    ).columns]  # fmt: skip
    return {r[cols.index("uprn")]: dict(zip(cols, r, strict=True)) for r in rows}


def read_outcodes(store: LocalStore, plan: Plan) -> dict[str, object]:
    """OUTCODE -> pyarrow Table of each published per-outcode file."""
    folder = store.path(export_location(plan))
    if not folder.is_dir():
        return {}
    return {
        f.name[: -len(".parquet")]: pq.read_table(f)
        for f in sorted(folder.glob("*.parquet"))
        if not f.name.startswith(".")
    }


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every visible file under root with its bytes and mtime (ns)."""
    out = {}
    for dirpath, dirnames, files in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in files:
            if name.startswith("."):
                continue
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = (p.read_bytes(), p.stat().st_mtime_ns)
    return out


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A throwaway copy of the tests' project (bakery.yaml + layers/) to edit in a test."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(PROJECT / "bakery.yaml", root / "bakery.yaml")
    shutil.copytree(PROJECT / "layers", root / "layers")
    return root
