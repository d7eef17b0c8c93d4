"""BAKERY_MEMORY_LIMIT's floor is the one its refusal names (issue 19, item 14): "use at
least 64MB" accepts 64MB (DuckDB's MB is 10**6 bytes, as bakery's) and DuckDB runs with
it; a value below is refused with that message."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from bakery.cli import app
from bakery.cli.local_options import engine_settings
from bakery.engine import duck


@pytest.mark.parametrize("value", ["64MB", "64000000", "0.064GB", "64MiB"])
def test_the_floor_the_message_names_is_accepted_and_duckdb_runs(monkeypatch, value):
    monkeypatch.setenv("BAKERY_MEMORY_LIMIT", value)
    _, memory = engine_settings(False)
    assert memory is not None
    con = duck.connect(memory_limit=memory)
    try:
        assert con.execute("SELECT 1 + 1").fetchone() == (2,)
    finally:
        con.close()


def test_below_the_floor_is_refused_naming_it(monkeypatch, tmp_path):
    monkeypatch.setenv("BAKERY_MEMORY_LIMIT", "63.9MB")
    result = CliRunner().invoke(
        app, ["bake", "addressbase", "--store", str(tmp_path)], catch_exceptions=False
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "bakery: error: BAKERY_MEMORY_LIMIT='63.9MB' is too small for DuckDB: use at least "
        "64MB, e.g. BAKERY_MEMORY_LIMIT=2GB"
    )
