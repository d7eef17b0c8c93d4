"""Messages about inputs say what is wrong with the input (issue 19, item 14): an empty
AddressBase CSV is "empty", not a failed one_distinct check; a sample file that is a
FIFO is "not a regular file", not "not found", and nothing blocks reading it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from bakery import sample_data
from bakery.engine import BakeError, bake
from bakery.plan import build_plan
from bakery.store import LocalStore
from bakery.workspace import load_workspace
from tests.local.conftest import RAW, REPO

runner = CliRunner()
WARDS = REPO / "tests" / "fixtures" / "wards"


def test_an_empty_addressbase_csv_is_reported_as_an_empty_input(plan, store):
    sample_data.write_sample_data(plan, store, addresses=300, ballots=20, seed=3)
    location = plan.table(RAW).location
    (csv,) = store.list(location)
    store.write_bytes(csv, b"")
    try:
        bake(plan, ["addressbase"], store)
    except BakeError as exc:
        message = str(exc)
    else:
        raise AssertionError("a bake of an empty input should fail")
    assert message == (
        "check addressbase.one_addressbase_source failed because the input "
        f"{RAW} is empty: its files at {location} hold no rows; put the data there, or "
        "seed sample data with `bakery sample-data` (or bake with --sample)"
    )
    assert "distinct_values" not in message


MANY_ROWS = """
  - type: check
    id: at_least_a_million
    description: A whole release.
    check: {kind: min_rows, table: addressbase_cleaned_raw, min: 1000000}
"""


def test_a_check_failing_on_rows_that_are_there_keeps_its_own_message(project_copy, tmp_path):
    layer = project_copy / "layers" / "addressbase.yaml"
    layer.write_text(layer.read_text() + MANY_ROWS)
    plan = build_plan(load_workspace(project_copy), "development")
    store = LocalStore(tmp_path / "store")
    sample_data.write_sample_data(plan, store, addresses=300, ballots=20, seed=3)
    try:
        bake(plan, ["addressbase"], store)
    except BakeError as exc:
        assert str(exc) == (
            "check addressbase.at_least_a_million failed: A whole release.: "
            "row_count=300, at_least=1000000"
        )
    else:
        raise AssertionError("300 rows are fewer than a million")


def _wards(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(WARDS, root)
    homes = root / "layers" / "samples" / "homes.csv"
    homes.unlink()
    os.mkfifo(homes)
    return root


def _process(args: list[str], root: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """A command as a process with a timeout: opening a FIFO for reading blocks until a
    writer comes, so a regression fails in seconds instead of hanging the suite."""
    env = {**os.environ, "BAKERY_PROJECT": str(root), "BAKERY_STORE": str(tmp_path / "store")}
    return subprocess.run(
        [sys.executable, "-c", "from bakery.cli import main; main()", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_a_fifo_sample_is_not_a_regular_file_for_validate_and_sample_data(tmp_path):
    root = _wards(tmp_path)
    fifo = root / "layers" / "samples" / "homes.csv"
    for command in (["validate"], ["sample-data", "wards"]):
        result = _process(command, root, tmp_path)
        assert result.returncode == 1, (command, result.stderr)
        lines = [ln for ln in result.stderr.splitlines() if "sample" in ln]
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert lines[0].endswith(
            f"steps[1].sample.file: sample 'samples/homes.csv' is a FIFO, not a regular file "
            f"({fifo}); give a CSV or Parquet file"
        ), lines[0]
        assert "not found" not in result.stderr


LOAD_FIFO = """
import sys
from pathlib import Path
from bakery import sample_data
from bakery.plan import build_plan
from bakery.store import LocalStore
from bakery.workspace import load_workspace

plan = build_plan(load_workspace(Path(sys.argv[1])), "development")
try:
    sample_data.load_file(Path(sys.argv[2]), plan.table("wards.homes"), LocalStore(sys.argv[3]))
except sample_data.SampleError as exc:
    print(exc)
"""


def test_a_sample_turned_into_a_fifo_after_the_plan_is_refused_not_waited_on(tmp_path):
    root = tmp_path / "project"
    shutil.copytree(WARDS, root)  # a regular sample: the plan builds
    fifo = tmp_path / "homes.csv"
    os.mkfifo(fifo)
    result = subprocess.run(
        [sys.executable, "-c", LOAD_FIFO, str(root), str(fifo), str(tmp_path / "store")],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(
        f"sample 'homes.csv' is a FIFO, not a regular file ({fifo}); give a CSV or Parquet file"
    ), result.stdout
