"""Export current ballots with their boundaries (WKT) from EveryElection's PostgreSQL.

The file is the one EveryElection's own `export_ballots_as_wkt_csv` command and
the running system's Lambda write to the same key, row for row:

- header `election_id,geography_id,geography_text,source_table`, lines ending
  in CRLF (Python's csv default, which both of them use); no particular order;
- ballots only (`group_type IS NULL`) that are `Approved`;
- current: polling on or after today minus 30 days, or `current` true; never
  a ballot whose `current` is false (NULL: decided by the date);
- one row per piece EE has already cut with ST_Subdivide: the pieces of the
  ballot's `division_geography_id` and of its `organisation_geography_id`
  (both left joins). `geography_id` is the piece's id, `geography_text` its
  WKT (EPSG:4326, lon/lat); `source_table` is `Organisation` when an
  organisation piece matched, else `Division` when a division piece did, else
  `None` (empty id and text: the ballot matches no address). A ballot with both
  ids set gets a row per (division piece, organisation piece) pair holding the
  division piece, labelled `Organisation`, exactly as EE's query gives it.

The layer's Glue table reads the four positions as `election_id, division_id,
geometry, source_table` (the running system's names; its CSV reader goes by position).

`write_export(conn, out)` is the core: any DB-API connection, rows streamed from
a server-side cursor into a text stream (memory does not grow with the rows).
`run_export(dsn, out)` and `run_local(dsn, folder, environment)` serve the local
engine (`bakery bake --ee-dsn`, psycopg, TLS as the libpq DSN says).
`handler` is the Lambda: connection from SSM and the environment (see
`ee_connection`), the CSV written to /tmp, then uploaded to
TABLE_LOCATION + FILE_NAME (default `current_elections.csv`).
"""

from __future__ import annotations

import csv
import datetime
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, TextIO

from bakery.lambdas import ee_connection

HEADER = ["election_id", "geography_id", "geography_text", "source_table"]
WINDOW_DAYS = 30
FILE_NAME = "current_elections.csv"
# What the local engine calls this handler's output in its messages.
OUTPUT_NAME = "ballots CSV"

# Positional %s parameter: the same text runs on psycopg (local) and pg8000 (Lambda).
QUERY = """
SELECT
    e.election_id,
    COALESCE(dp.id, op.id) AS geography_id,
    COALESCE(ST_AsText(dp.geography), ST_AsText(op.geography)) AS geography_text,
    CASE
        WHEN op.id IS NOT NULL THEN 'Organisation'
        WHEN dp.id IS NOT NULL THEN 'Division'
        ELSE 'None'
    END AS source_table
FROM elections_election AS e
LEFT JOIN organisations_divisiongeographysubdivided AS dp
    ON dp.division_geography_id = e.division_geography_id
LEFT JOIN organisations_organisationgeographysubdivided AS op
    ON op.organisation_geography_id = e.organisation_geography_id
WHERE e.current_status = 'Approved'
  AND e.group_type IS NULL
  AND (e.poll_open_date >= %s OR e."current")
  AND e."current" IS DISTINCT FROM false
"""


def since(today: datetime.date | None = None) -> datetime.date:
    """The earliest polling day still current without the `current` flag."""
    return (today or datetime.date.today()) - datetime.timedelta(days=WINDOW_DAYS)


def write_export(conn: Any, out: IO[str], *, today: datetime.date | None = None) -> int:
    """Write the CSV from a DB-API connection (not in autocommit); return the data rows."""
    writer = csv.writer(out)  # excel dialect: CRLF, as EE's command writes
    writer.writerow(HEADER)
    n = 0
    for row in ee_connection.stream_rows(conn, QUERY, (since(today),)):
        writer.writerow(row)
        n += 1
    return n


def run_export(dsn: str, out: TextIO, *, today: datetime.date | None = None) -> int:
    """Export from the database at `dsn` (libpq form) into `out`; return the row count."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        return write_export(conn, out, today=today)


def run_local(dsn: str, folder: Path, environment: Mapping[str, str]) -> int:
    """The local engine's entry: write FILE_NAME into `folder`; return the row count."""
    path = folder / (environment.get("FILE_NAME") or FILE_NAME)
    with path.open("w", newline="", encoding="utf-8") as out:
        return run_export(dsn, out)


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Export to TABLE_LOCATION + FILE_NAME in S3; connection settings in `ee_connection`."""
    import boto3

    from bakery.lambdas import s3uri

    # The staged location, from the layer's publish plan (bakery.planning.publish_plan):
    # the handler never writes the live table; the layer's publish does.
    bucket, prefix = s3uri.split(event.get("table_location") or os.environ["TABLE_LOCATION"])
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    key = prefix + (os.environ.get("FILE_NAME") or FILE_NAME)
    conn = ee_connection.connect_from_environment()
    try:
        encryption = ee_connection.encryption(conn)
        with tempfile.NamedTemporaryFile("w", suffix=".csv", newline="", encoding="utf-8") as tmp:
            rows = write_export(conn, tmp)
            tmp.flush()
            size = os.path.getsize(tmp.name)
            boto3.client("s3").upload_file(tmp.name, bucket, key)
    finally:
        conn.close()
    print(f"exported {rows} rows ({size} bytes) to s3://{bucket}/{key}; connection {encryption}")
    return {"location": f"s3://{bucket}/{key}", "rows": rows, "bytes": size}
