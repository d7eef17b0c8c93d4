"""SIGTERM, which systemd, container runtimes and CI time-outs send, is handled as Ctrl-C
(issue 19, item 7): at any publish point, and while a step runs, a bake ends with the
published tables entirely old or entirely new, its staging removed and its lock
released, says so in the line a Ctrl-C gets, and exits 143 (128 + SIGTERM).

Real processes, as the kill tests do: tests/local/signal_child.py runs `bakery` and sends
itself the signal right after the N-th filesystem operation of the publish: every point up
to the commit, then the first of each kind of clean-up (tests/interrupted.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from bakery import sample_data
from bakery.engine import bake
from bakery.store import LocalStore
from tests.interrupted import hidden, points_to_walk, publish_points
from tests.interrupted import partitioned_rows as rows
from tests.interrupted import run_child as _child
from tests.local.conftest import PROJECT, REPO, snapshot

UNCHANGED = "interrupted: addressbase (its published data is unchanged); not started: none"
PUBLISHED = "interrupted: addressbase (it was published, then failed); not started: none"


def baked_then_new_inputs(plan, root: Path) -> LocalStore:
    store = LocalStore(root)
    sample_data.write_sample_data(plan, store, addresses=300, ballots=20, seed=3)
    bake(plan, ["addressbase"], store)
    sample_data.write_sample_data(
        plan, store, addresses=300, seed=99, only=["addressbase.addressbase_cleaned_raw"]
    )
    return store


def test_sigterm_at_every_publish_point_of_a_bake_leaves_old_or_new(plan, tmp_path):
    base = baked_then_new_inputs(plan, tmp_path / "base")
    old = rows(base, plan)
    args = ["bake", "addressbase", "--store"]

    counted = LocalStore(tmp_path / "counted")
    shutil.copytree(base.root, counted.root)
    proc = _child([*args, str(counted.root)], BAKERY_TEST_SIGNAL_AT="0")
    assert proc.returncode == 0, proc.stderr
    points = publish_points(proc.stderr)
    new = rows(counted, plan)
    assert len(points) >= 4 and new != old, (points, proc.stderr)
    kinds = [kind for _, kind in points]
    walk = points_to_walk(points)
    # the journal written, the published folder moved aside, the staged one moved in, the
    # commit, a replaced copy deleted, the staging removed: each is walked
    assert sorted({kinds[n - 1] for n in walk}) == sorted(set(kinds)), points
    assert {
        "replace journal", "replace published folder", "replace staging", "unlink journal",
        "rmtree replaced copy", "rmtree staging",
    } <= set(kinds), points  # fmt: skip

    outcomes = set()
    for n in walk:
        store = LocalStore(tmp_path / f"at-{n}")
        shutil.copytree(base.root, store.root)
        proc = _child([*args, str(store.root)], BAKERY_TEST_SIGNAL_AT=str(n))
        where = f"SIGTERM after publish operation {n} of {len(points)}: {proc.stderr[-600:]}"
        assert proc.returncode == 143, where
        assert "Traceback" not in proc.stderr, where
        lines = proc.stderr.strip().splitlines()
        assert lines[-1] == "terminated (SIGTERM)", where
        line = next(ln for ln in lines if ln.startswith("terminated (SIGTERM) after "))
        after = rows(store, plan)
        if line.endswith(UNCHANGED):
            assert after == old, where
            assert hidden(store.root) == [], where  # put back, staging removed
            outcomes.add("old")
        else:
            assert line.endswith(PUBLISHED), where
            assert after == new, where
            # stopped while deleting the replaced copy: the next bake deletes what is left
            assert all(".old-" in h for h in hidden(store.root)), where
            outcomes.add("new")
        assert bake(plan, ["addressbase"], store).ok  # the lock was released
        assert rows(store, plan) == new
        assert hidden(store.root) == [], where
    assert outcomes == {"old", "new"}  # both sides of the commit were walked


def test_sigterm_while_a_step_runs_leaves_the_store_as_it_was(plan, tmp_path):
    store = baked_then_new_inputs(plan, tmp_path / "store")
    before = snapshot(store.root)
    env = {**os.environ, "BAKERY_PROJECT": str(PROJECT)}
    env["BAKERY_TEST_PAUSE_AT"] = "partition_addressbase"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from bakery.cli import main; main()", "bake", "addressbase",
         "--store", str(store.root)],
        cwd=REPO, env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    deadline, seen = time.time() + 120, ""
    while time.time() < deadline:
        line = proc.stderr.readline()
        seen += line
        if "paused at addressbase.partition_addressbase" in line or not line:
            break
    assert "paused at" in seen, seen
    assert hidden(store.root)  # the step's output waits in staging
    proc.send_signal(signal.SIGTERM)
    rest = proc.stderr.read()
    assert proc.wait(60) == 143, seen + rest
    assert "Traceback" not in rest
    assert f"(store {store.root}): baked and published: none; {UNCHANGED}" in rest, rest
    assert snapshot(store.root) == before
    assert hidden(store.root) == []
    assert bake(plan, ["addressbase"], store).ok  # no lock left behind
