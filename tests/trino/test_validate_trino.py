"""`bakery validate --engine trino` (issue 21 item 3): Trino types every athena_query's
output, where sqlglot leaves an expression untyped and plain validate lets it pass."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bakery.cli.validate_run import Stop, run
from bakery.trino.server import Server

SQL = "layers/queries/addressbase_partitioned.sql"
LONGITUDE = """    CASE
        WHEN reject_reason IS NOT NULL OR location_kind NOT IN ('canonical', 'point') THEN NULL
        WHEN srid = 27700 THEN wgs84_longitude
        ELSE x
    END AS longitude,"""
# text, not a double: sqlglot does not type element_at over split, Trino does
AS_TEXT = "    element_at(split(raw_location, ' '), 2) AS longitude,"


@pytest.fixture
def copy(tmp_path: Path, repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(repo / "bakery.yaml", root / "bakery.yaml")
    shutil.copytree(repo / "layers", root / "layers")
    monkeypatch.chdir(root)
    monkeypatch.delenv("BAKERY_PROJECT", raising=False)
    monkeypatch.delenv("DC_ENVIRONMENT", raising=False)
    return root


def validate(capsys: pytest.CaptureFixture[str], trino: Server | None) -> tuple[int, str]:
    try:
        run(None, "development", False, "trino" if trino else None, trino)
        code = 0
    except Stop as stop:
        code = stop.code
    return code, capsys.readouterr().err


def test_the_layers_validate_clean_on_trino(copy, trino, capsys):
    code, err = validate(capsys, trino)
    assert code == 0, err
    assert "3 queries described by Trino" in err


def test_a_text_longitude_fails_on_trino_only(copy, trino, capsys):
    sql = copy / SQL
    text = sql.read_text()
    assert LONGITUDE in text
    sql.write_text(text.replace(LONGITUDE, AS_TEXT))
    line = sql.read_text().splitlines().index(AS_TEXT) + 1

    code, err = validate(capsys, None)
    assert code == 0, err  # the blind spot: plain validate passes

    code, err = validate(capsys, trino)
    assert code == 1
    problems = [ln for ln in err.splitlines() if ln.startswith(SQL)]
    assert len(problems) == 1, err
    assert problems[0].startswith(f"{SQL}:{line}:"), (line, err)
    assert "'longitude' is varchar on Trino" in problems[0]
    assert "declares it double" in problems[0]


def test_without_trino_the_exit_code_is_2(copy, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from bakery.cli import app

    monkeypatch.setenv("BAKERY_TRINO_HOME", str(tmp_path / "no-trino"))
    result = CliRunner().invoke(app, ["validate", "--engine", "trino"])
    assert result.exit_code == 2, result.output
    assert "bakery engine install trino" in result.output
