"""One small sample bake per test session, shared by the serve and review tests: the
same sample the documents' commands use (400 addresses, 24 ballots, seed 7), baked by
the real `bakery bake` into a temporary store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXPORT = "pollingstations.private.data/addressbase/development/current_elections_parquet"
REVIEWS = "pollingstations.private.data/addressbase/development/current_boundary_reviews_parquet"


def bakery(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DC_ENVIRONMENT": "development"}
    env.pop("BAKERY_STORE", None)
    env.pop("BAKERY_S3_ENDPOINT", None)
    return subprocess.run(
        [sys.executable, "-m", "bakery", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=check,
        timeout=300,
    )


@pytest.fixture(scope="session")
def baked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The store of a sample bake of current_elections and current_boundary_changes."""
    store = tmp_path_factory.mktemp("baked") / "store"
    sample = ["--rows", "addressbase=400", "--rows", "ballots=24", "--seed", "7"]
    bakery("sample-data", *sample, "--store", str(store))
    bakery("bake", "current_elections", "current_boundary_changes", "--with-upstream",
           "--sample", "--store", str(store))  # fmt: skip
    return store
