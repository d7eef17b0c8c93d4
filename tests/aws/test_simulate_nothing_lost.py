"""`simulate` leaves the store entirely old or entirely new, as `bake` does (issue 19,
items 6, 7 and 14): a state machine failing at any CopyObject or PutObject publishes
nothing, a kill or SIGTERM while a layer is copied back into the store is put back or
rolled forward by the next run, and a bake cannot start while simulate holds the store.

S3 calls fail inside moto's server (the simulation's S3), so that DuckDB's writes through
httpfs fail too, not only the Lambda handlers' boto3 calls. The copy-back itself is
walked operation by operation in tests/local/test_nothing_lost_simulate.py.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from aws_helpers import PROJECT, REPO

from bakery.engine import BakeError, bake
from bakery.engine.publish import Staging
from bakery.plan import Plan
from bakery.sample_data import write_sample_data
from bakery.simulate.run import SimulateError, simulate
from bakery.store import LocalStore
from tests.interrupted import hidden as _hidden
from tests.interrupted import partitioned_rows as _rows
from tests.interrupted import run_child

PARTITIONED = "addressbase.addressbase_partitioned"


def _pt(lon: float, lat: float) -> str:
    return f"SRID=4326;POINT({lon} {lat})"


# Few rows in three first letters each: three partition files, so few S3 calls to walk.
OLD = [(str(1000 + i), f"{i} Old Road", f"{c}B1 1AA", _pt(0.1 * i, 51.5), "R")
       for i, c in enumerate("AABBCC")]  # fmt: skip
NEW = [(str(2000 + i), f"{i} New Road", f"{c}B1 1AA", _pt(0.1 * i, 51.5), "R")
       for i, c in enumerate("AADDEE")]  # fmt: skip


def _raw(plan: Plan, store: LocalStore, addresses: list[tuple]) -> None:
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(addresses)
    location = plan.table("addressbase.addressbase_cleaned_raw").location
    store.write_bytes(location + "raw.csv", text.getvalue().encode())


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and not any(p.startswith(".") for p in rel.parts):
            out[rel.as_posix()] = (path.read_bytes(), path.stat().st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def published(plan: Plan, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store where addressbase was baked from OLD and the raw input is now NEW."""
    root = tmp_path_factory.mktemp("published")
    store = LocalStore(root)
    _raw(plan, store, OLD)
    bake(plan, ["addressbase"], store)
    _raw(plan, store, NEW)
    return root


def _copy(published: Path, root: Path) -> LocalStore:
    shutil.copytree(published, root)  # copy2: bytes and mtimes
    return LocalStore(root)


class MotoFaults:
    """Counts the S3 `operation` calls moto serves once the store is loaded (a PutObject
    made by a CopyObject is the copy's, not counted); from the `at`-th on, each fails
    with S3's 500 InternalError."""

    def __init__(self, mp: pytest.MonkeyPatch, operation: str, at: int = 0):
        import moto.s3.models as models
        from moto.s3.exceptions import S3ClientError

        from bakery.simulate import s3 as sim_s3

        class InternalError(S3ClientError):
            code = "InternalError"

        self.count, self.at, self.fired, self.armed = 0, at, False, False
        local = threading.local()
        real_load = sim_s3.load
        real_copy, real_put = models.S3Backend.copy_object, models.S3Backend.put_object

        def load(*args, **kwargs):
            n = real_load(*args, **kwargs)
            self.armed = True
            return n

        def count() -> None:
            self.count += 1
            if self.at and self.count >= self.at:
                self.fired = True
                raise InternalError(
                    "InternalError", "We encountered an internal error. Please try again."
                )

        def copy(backend, *args, **kwargs):
            if self.armed and operation == "copy_object":
                count()
            local.copying = True
            try:
                return real_copy(backend, *args, **kwargs)
            finally:
                local.copying = False

        def put(backend, *args, **kwargs):
            if self.armed and operation == "put_object" and not getattr(local, "copying", 0):
                count()
            return real_put(backend, *args, **kwargs)

        mp.setattr(sim_s3, "load", load)
        mp.setattr(models.S3Backend, "copy_object", copy)
        mp.setattr(models.S3Backend, "put_object", put)


def _simulate(plan: Plan, root: Path, **kwargs):
    return simulate(plan, ["addressbase"], root, project_root=REPO, **kwargs)


def test_a_state_machine_failing_at_any_copy_or_put_publishes_nothing(plan, published, tmp_path):
    """Every CopyObject (the publish Lambda copying staging over live) and every
    PutObject (UNLOAD writing staging) failing from the N-th call on: the layer fails
    and the store is as it was, byte for byte; the next simulate publishes it all.
    Before, the failed run was mirrored into the store: some partitions new, some old."""
    old = _rows(LocalStore(published), plan)
    before = _snapshot(published)
    counts = {}
    for operation in ("copy_object", "put_object"):
        clean = _copy(published, tmp_path / f"clean-{operation}")
        with pytest.MonkeyPatch.context() as mp:
            counter = MotoFaults(mp, operation)
            result = _simulate(plan, clean.root)
        assert result.ok, result.layers[-1].failure()
        counts[operation] = counter.count
    new = _rows(clean, plan)
    assert new is not None and old is not None and len(new) == len(NEW) and new != old
    assert counts["copy_object"] >= 3 and counts["put_object"] >= 3, counts

    for operation, total in counts.items():
        for n in range(1, total + 1):
            root = tmp_path / f"{operation}-{n}"
            _copy(published, root)
            with pytest.MonkeyPatch.context() as mp:
                faults = MotoFaults(mp, operation, at=n)
                result = _simulate(plan, root)
            where = f"{operation} failing from call {n} of {total}"
            assert faults.fired, where
            assert not result.ok and result.layers[-1].status == "FAILED", where
            assert _snapshot(root) == before, where
            assert _hidden(root) == [], where
            assert result.layers[-1].published == [], where
    result = _simulate(plan, root)  # after the last failure: nothing to repair
    assert result.ok and result.layers[-1].published == [PARTITIONED]
    assert _rows(LocalStore(root), plan) == new


def test_cli_a_failing_copy_exits_1_with_one_line_and_the_store_unchanged(
    plan, tmp_path, monkeypatch
):
    """The issue's case: CopyObject failing from its 12th call (sample data, 22
    partitions). Before: exit 1, yet a store mixing old and new partitions, and a
    failure line quoting the Lambda's Python stack trace."""
    from typer.testing import CliRunner

    from bakery.cli import app

    store = LocalStore(tmp_path / "store")
    write_sample_data(plan, store, addresses=300, ballots=10, seed=3)
    bake(plan, ["addressbase"], store)
    write_sample_data(
        plan, store, addresses=300, seed=9, only=["addressbase.addressbase_cleaned_raw"]
    )
    before = _snapshot(store.root)
    monkeypatch.setenv("BAKERY_PROJECT", str(PROJECT))
    MotoFaults(monkeypatch, "copy_object", at=12)
    result = CliRunner().invoke(app, ["simulate", "addressbase", "--store", str(store.root)])
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        'bakery: error: addressbase FAILED at state "publish": '
        "ClientError: An error occurred (InternalError) when calling the CopyObject "
        "operation: We encountered an internal error. Please try again."
    )
    for text in ("Traceback", "stackTrace", 'File "'):
        assert text not in result.stderr, text
    assert _snapshot(store.root) == before
    assert _hidden(store.root) == []


def test_a_bake_cannot_start_while_simulate_publishes_nor_simulate_while_a_bake_runs(
    plan, published, tmp_path, monkeypatch
):
    store = _copy(published, tmp_path / "store")
    refused: list[str] = []
    real = Staging.publish

    def publish(self, refs):
        if "-sim-" in self.run_id and not refused:  # simulate is about to publish
            with pytest.raises(BakeError) as info:
                bake(plan, ["addressbase"], store)
            refused.append(str(info.value))
        return real(self, refs)

    with monkeypatch.context() as mp:
        mp.setattr(Staging, "publish", publish)
        assert _simulate(plan, store.root).ok
    assert refused and "another bake is running on store" in refused[0], refused

    holder = Staging(store, plan, "a-bake")
    holder.acquire()
    try:
        with pytest.raises(SimulateError, match="another bake is running on store"):
            _simulate(plan, store.root)
    finally:
        holder.release()


def _child(root: Path, signal_name: str, at: int) -> subprocess.CompletedProcess:
    return run_child(
        ["simulate", "addressbase", "--store", str(root)],
        BAKERY_TEST_SIGNAL=signal_name,
        BAKERY_TEST_SIGNAL_AT=str(at),
    )


def test_a_simulate_killed_mid_publish_is_rolled_forward_by_the_next_run(plan, published, tmp_path):
    """SIGKILL right after the published folder was moved aside (operation 2: the
    journal, then that rename): the table is missing until the next run, which
    finishes the publish. Before, a kill during the mirror left a mixture that no
    later bake repaired."""
    old = _rows(LocalStore(published), plan)
    for n, follow in ((2, "simulate"), (3, "bake")):
        store = _copy(published, tmp_path / f"killed-{n}")
        proc = _child(store.root, "SIGKILL", n)
        assert proc.returncode == -9, proc.stderr
        assert list(store.root.rglob("*.publish.json")), proc.stderr  # the journal
        if follow == "simulate":
            result = _simulate(plan, store.root)
            assert result.ok and any("finished publishing 1 table" in t for t in result.notes)
        else:
            result = bake(plan, ["addressbase"], store)
            assert any("finished publishing 1 table" in t for t in result.notes)
        rows = _rows(store, plan)
        assert rows is not None and rows != old and len(rows) == len(NEW)
        assert _hidden(store.root) == []


def test_sigterm_while_simulate_publishes_puts_everything_back(plan, published, tmp_path):
    store = _copy(published, tmp_path / "store")
    before = _snapshot(store.root)
    proc = _child(store.root, "SIGTERM", 2)  # the published folder just moved aside
    assert proc.returncode == 143, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1] == "terminated (SIGTERM)", lines
    assert lines[-2].startswith("terminated (SIGTERM) after "), lines
    assert lines[-2].endswith(
        "simulated and published: none; interrupted: addressbase (its published data is "
        "unchanged); not started: none"
    ), lines
    assert _snapshot(store.root) == before
    assert _hidden(store.root) == []
    assert bake(plan, ["addressbase"], store).ok  # the lock was released


def test_sigterm_while_a_state_machine_runs_stops_it_and_leaves_the_store_as_it_was(
    plan, published, tmp_path
):
    """SIGTERM while the interpreter and the simulated Athena work (the signal may land in
    a DuckDB query, which turns it into a failed query): the interpreter is stopped,
    nothing is published, the report is the interrupted one."""
    import signal
    import time

    store = _copy(published, tmp_path / "store")
    before = _snapshot(store.root)
    proc = subprocess.Popen(
        [sys.executable, "-c", "from bakery.cli import main; main()", "simulate",
         "addressbase", "--store", str(store.root)],
        cwd=REPO, env={**os.environ, "BAKERY_PROJECT": str(PROJECT)},
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    deadline, seen = time.time() + 120, ""
    while time.time() < deadline:
        line = proc.stderr.readline()
        seen += line
        if "addressbase: empty_partitioned" in line or not line:
            break
    assert "empty_partitioned" in seen, seen
    proc.send_signal(signal.SIGTERM)
    rest = proc.stderr.read()
    assert proc.wait(60) == 143, seen + rest
    assert "Traceback" not in rest, rest
    report = next(ln for ln in rest.splitlines() if ln.startswith("terminated (SIGTERM) after"))
    assert report.endswith(
        "simulated and published: none; interrupted: addressbase (its published data is "
        "unchanged); not started: none"
    ), report
    assert _snapshot(store.root) == before
    assert _hidden(store.root) == []
    assert bake(plan, ["addressbase"], store).ok  # the lock was released
