"""An export_by_key step that fails or is killed leaves every published byte as it was:
its files are staged and published with the layer's tables (issue 13), and the next
bake recovers. (The fault walk over every filesystem operation of a publish, export
included, is in test_nothing_lost.py.)"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from bakery import sample_data
from bakery.cli import app
from bakery.democracy_club.samples.ballots import ballots_csv
from bakery.engine import BakeError, bake
from bakery.engine.publish import STAGING
from tests.local.conftest import PROJECT, REPO, read_joined, read_outcodes, snapshot

runner = CliRunner()


def _baked_then_new_ballots(plan, store) -> tuple[dict, dict]:
    sample_data.write_sample_data(plan, store, addresses=3000, ballots=150, seed=3)
    bake(plan, ["current_elections"], store, with_upstream=True)
    joined, outcodes = read_joined(store, plan), read_outcodes(store, plan)
    location = plan.table("current_elections.current_ballots").location
    store.write_bytes(location + "current_elections.csv", ballots_csv(150, seed=99))
    return joined, outcodes


def test_an_export_failing_half_way_leaves_tables_and_outcode_files_unchanged(
    plan, store, monkeypatch
):
    from bakery.lambdas import export_by_key as core

    before_joined, before_outcodes = _baked_then_new_ballots(plan, store)
    before = snapshot(store.root)
    real, calls = core.export_table, []

    def full_disk_at_the_second_partition(*args, **kwargs):
        calls.append(1)
        if len(calls) >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    with monkeypatch.context() as mp:
        mp.setattr(core, "export_table", full_disk_at_the_second_partition)
        with pytest.raises(BakeError, match="export_outcodes failed: .*No space left"):
            bake(plan, ["current_elections"], store)
        result = runner.invoke(app, ["bake", "current_elections", "--store", str(store.root)])
    assert len(calls) >= 2  # the first partition's files were written before the fault
    assert result.exit_code == 1, result.output
    assert (
        result.stderr.strip()
        .splitlines()[-2]
        .endswith("failed: current_elections (its published data is unchanged); not started: none")
    )
    assert snapshot(store.root) == before  # tables and outcode files: bytes and mtimes
    assert read_outcodes(store, plan).keys() == before_outcodes.keys()

    assert bake(plan, ["current_elections"], store).ok
    assert read_joined(store, plan) != before_joined
    after = read_outcodes(store, plan)
    assert after.keys() == before_outcodes.keys()
    assert any(not after[k].equals(before_outcodes[k]) for k in after)


def test_killed_after_the_export_wrote_its_files_leaves_them_unpublished(plan, store):
    before_joined, before_outcodes = _baked_then_new_ballots(plan, store)
    before = snapshot(store.root)
    env = {**os.environ, "BAKERY_TEST_PAUSE_AT": "export_outcodes", "BAKERY_PROJECT": str(PROJECT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from bakery.cli import main; main()", "bake",
         "current_elections", "--store", str(store.root)],
        cwd=REPO, env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline, seen = time.time() + 90, ""
    while time.time() < deadline:
        line = proc.stderr.readline()
        seen += line
        if "paused at current_elections.export_outcodes" in line or not line:
            break
    assert "paused at" in seen, seen
    staged = store.root / "pollingstations.private.data" / STAGING
    assert list(staged.rglob("e/**/*.parquet"))  # the export's files wait in staging
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)

    assert snapshot(store.root) == before
    assert read_joined(store, plan) == before_joined

    result = bake(plan, ["current_elections"], store)
    assert any("leftover staging" in n for n in result.notes)
    assert not list(staged.rglob("*"))
    assert read_joined(store, plan) != before_joined
    assert read_outcodes(store, plan).keys() == before_outcodes.keys()
