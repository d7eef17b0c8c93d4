"""CSV inputs read whole at any size.

DuckDB's parallel CSV reader with `strict_mode=false` refuses some files once they pass
its 16 MB buffer ("does not support a full read on this file", duckdb/duckdb#24237).
The first 171,349 lines of the 4M-address sample are such a file: generated here in
memory rather than committed (16 MB)."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from conftest import RAW

from bakery.democracy_club.samples.addressbase import addresses_table
from bakery.engine import duck
from bakery.engine.tables import source_sql

LINES = 171_349


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory) -> tuple:
    table = addresses_table(4_000_000, seed=1).slice(0, LINES)
    folder = tmp_path_factory.mktemp("csv")
    sink = pa.BufferOutputStream()
    pacsv.write_csv(
        table, sink, write_options=pacsv.WriteOptions(include_header=False, quoting_style="needed")
    )
    data = sink.getvalue().to_pybytes()
    assert len(data) > 16_000_000
    (folder / "raw.csv").write_bytes(data)
    return folder, table


def test_the_file_still_trips_the_lenient_reader(big_csv):
    """Guard: this input reproduces the DuckDB failure, so the next test means something."""
    folder, _ = big_csv
    columns = "{'a': 'VARCHAR', 'b': 'VARCHAR', 'c': 'VARCHAR', 'd': 'VARCHAR', 'e': 'VARCHAR'}"
    with pytest.raises(duckdb.NotImplementedException, match="full read"):
        duckdb.connect().execute(
            f"SELECT count(*) FROM read_csv('{folder / 'raw.csv'}', header=false, "
            f"delim=',', quote='\"', escape='\"', columns={columns}, auto_detect=false, "
            "nullstr='\\N', strict_mode=false)"
        ).fetchone()


def test_the_engine_reads_every_line(big_csv, plan, store):
    folder, table = big_csv
    location = plan.table(RAW).location
    store.write_bytes(location + "raw.csv", (folder / "raw.csv").read_bytes())
    con = duck.connect()
    try:
        sql = source_sql(plan.table(RAW), store, location)
        count, distinct, last = con.execute(
            f"SELECT count(*), count(DISTINCT uprn), max(uprn) FROM ({sql})"
        ).fetchone()
    finally:
        con.close()
    assert count == distinct == LINES
    assert last == max(table["uprn"].to_pylist())
