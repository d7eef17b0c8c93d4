"""Execution parameters on Trino as on Athena, where the engines disagree."""

from __future__ import annotations

import pytest

from bakery.trino.tables import Tables


def test_parameters_arrive_as_text_like_athenas(trino, tmp_path):
    """Athena's ExecutionParameters are SQL literals and the state machines pass every
    value quoted (bakery.compile.athena_sql.sql_literal), so a for_each row's integer
    arrives as varchar: `int_column = ?` fails on Athena and on Trino, while DuckDB casts
    silently. The Trino back-end binds text as Athena does; the layers compare
    CAST(id AS varchar) = ? (layers/queries/addresses_to_boundary_change.sql)."""
    import trino as client

    tables = Tables(trino.connect(), store=None)  # type: ignore[arg-type]
    assert tables.run("SELECT CAST(7 AS varchar) = ?", [7]) == [[True]]
    raw = trino.connect().cursor()
    with pytest.raises(client.exceptions.TrinoUserError, match="varchar = integer"):
        raw.execute("SELECT CAST(7 AS varchar) = ?", [7])
        raw.fetchall()


def test_a_parameterized_statement_is_one_query_and_traced(trino, tmp_path, monkeypatch):
    """Bound with one EXECUTE IMMEDIATE, not PREPARE + EXECUTE + DEALLOCATE (three
    queries, each a round trip with its own planning); $BAKERY_TRINO_TRACE logs it."""
    trace = tmp_path / "trace.tsv"
    monkeypatch.setenv("BAKERY_TRINO_TRACE", str(trace))
    tables = Tables(trino.connect(), store=None)  # type: ignore[arg-type]
    marker = f"bakery-{tmp_path.name}"
    assert tables.run(f"SELECT ? || '{marker}'", ["x"]) == [[f"x{marker}"]]
    sent = tables.run(
        "SELECT query FROM system.runtime.queries WHERE strpos(query, ?) > 0 "
        "AND strpos(query, 'system.runtime') = 0",
        [marker],
    )
    assert [q[0].split()[:2] for q in sent] == [["EXECUTE", "IMMEDIATE"]], sent
    wall, kind, text = trace.read_text().splitlines()[0].split("\t")
    assert float(wall) > 0 and kind == "SELECT ?" and marker in text
