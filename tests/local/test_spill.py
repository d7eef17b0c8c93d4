"""A bake larger than DuckDB's memory limit spills to a temp directory in the store's
staging area and completes with the same rows; the limit and the directory are
derived from the machine and the run, and overridable."""

from __future__ import annotations

from pathlib import Path

from bakery import sample_data
from bakery.engine import bake, duck
from bakery.engine.publish import Staging
from bakery.engine.runner import Reporter
from tests.local.conftest import read_joined


class SpillWatch(Reporter):
    def __init__(self, folder: Path):
        self.folder = folder
        self.spilled_by: list[str] = []

    def done(self, result) -> None:
        if self.folder.exists():  # DuckDB makes it at the first spill, drops it at close
            self.spilled_by.append(result.id)


def test_bake_larger_than_the_memory_limit_spills_and_completes(plan, store, tmp_path, monkeypatch):
    sample_data.write_sample_data(plan, store, addresses=100_000, ballots=100, seed=3)
    bake(plan, ["current_elections"], store, with_upstream=True)
    unlimited = read_joined(store, plan)

    spill = tmp_path / "spill"
    monkeypatch.setenv("BAKERY_TEMP_DIRECTORY", str(spill))
    watch = SpillWatch(spill)
    result = bake(
        plan, ["current_elections"], store, with_upstream=True, memory_limit="64MB", reporter=watch
    )
    assert result.ok
    assert "join_ballots_to_addresses" in watch.spilled_by  # it did not fit: it spilled
    assert read_joined(store, plan) == unlimited
    assert not spill.exists()


def test_spill_directory_is_in_the_runs_staging_area_unless_overridden(plan, store, monkeypatch):
    monkeypatch.delenv("BAKERY_TEMP_DIRECTORY", raising=False)
    folder = Path(duck.spill_directory(Staging(store, plan, "run-1")))
    assert folder.name == "duckdb-tmp" and folder.parent.name == "run-1"
    assert folder.parent.parent.name == ".bakery-staging"
    assert folder.is_relative_to(store.root) and folder.parent.is_dir()
    monkeypatch.setenv("BAKERY_TEMP_DIRECTORY", "/somewhere/else")
    assert duck.spill_directory(Staging(store, plan, "run-1")) == "/somewhere/else"


def test_memory_limit_defaults_to_half_the_machine_and_is_overridable(monkeypatch):
    monkeypatch.delenv("BAKERY_MEMORY_LIMIT", raising=False)
    con = duck.connect()
    limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    con.close()
    half_gib = duck.machine_memory() / 2 / 2**30
    value, unit = limit.split()
    got_gib = float(value) * {"GiB": 1, "MiB": 1 / 1024}[unit]
    assert abs(got_gib - half_gib) < 0.05 * half_gib + 0.01
    monkeypatch.setenv("BAKERY_MEMORY_LIMIT", "300MB")
    con = duck.connect()
    assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == "286.1 MiB"
    con.close()
    assert duck.settings(memory_limit="1GB")["memory_limit"] == "1GB"
