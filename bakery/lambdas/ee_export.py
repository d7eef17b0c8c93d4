"""Export current ballots with their boundaries (WKT) from EveryElection's PostgreSQL.

One CSV row per piece of a ballot's boundary: the geography is cut with
ST_Subdivide so that point-in-polygon tests downstream stay fast, so a ballot
has several rows. Columns: election_id, division_id, geometry, source_table.

- Approved ballots only (`current_status = 'Approved'`, `group_type IS NULL`:
  ballots, not election groups) polling in the last 30 days or later.
- The boundary is the division's geography when the ballot has a division,
  otherwise the organisation's geography valid on polling day.
  `source_table` says which: Division, Organisation, or None (no geography:
  an empty geometry that matches no address).

`run_export(dsn, out)` is the plain core the local engine calls; `handler` is
the Lambda entry point (host and password from SSM, CSV to S3).
"""

from __future__ import annotations

import csv
import datetime
import os
import tempfile
from typing import Any, TextIO

HEADER = ["election_id", "division_id", "geometry", "source_table"]
WINDOW_DAYS = 30

# Positional %s parameters: the same text runs on psycopg (local) and pg8000 (Lambda).
QUERY = """
SELECT
    e.election_id,
    COALESCE(e.division_id::text, '') AS division_id,
    COALESCE(ST_AsText(ST_Transform(part.geom, 4326)), '') AS geometry,
    CASE
        WHEN part.geom IS NULL THEN 'None'
        WHEN e.division_id IS NOT NULL THEN 'Division'
        ELSE 'Organisation'
    END AS source_table
FROM elections_election AS e
LEFT JOIN organisations_divisiongeography AS dg
    ON e.division_id IS NOT NULL AND dg.division_id = e.division_id
LEFT JOIN LATERAL (
    SELECT og.geography
    FROM organisations_organisationgeography AS og
    WHERE e.division_id IS NULL
      AND og.organisation_id = e.organisation_id
      AND (og.start_date IS NULL OR og.start_date <= e.poll_open_date)
      AND (og.end_date IS NULL OR og.end_date >= e.poll_open_date)
    ORDER BY og.start_date DESC NULLS LAST, og.id DESC
    LIMIT 1
) AS org ON true
LEFT JOIN LATERAL ST_Subdivide(COALESCE(dg.geography, org.geography))
    WITH ORDINALITY AS part(geom, n) ON true
WHERE e.current_status = 'Approved'
  AND e.group_type IS NULL
  AND e.poll_open_date >= %s
ORDER BY e.election_id, part.n
"""


def write_export(conn: Any, out: TextIO, *, today: datetime.date | None = None) -> int:
    """Write the CSV from any DB-API connection; return the number of data rows."""
    since = (today or datetime.date.today()) - datetime.timedelta(days=WINDOW_DAYS)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    cursor = conn.cursor()
    try:
        cursor.execute(QUERY, (since,))
        n = 0
        while rows := cursor.fetchmany(1000):
            writer.writerows(rows)
            n += len(rows)
    finally:
        cursor.close()
    return n


def run_export(dsn: str, out: TextIO, *, today: datetime.date | None = None) -> int:
    """Export from the database at `dsn` (libpq form) into `out`; return the row count."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        return write_export(conn, out, today=today)


def _connect(host: str, password: str, user: str, dbname: str, port: int) -> Any:
    """psycopg when it is installed, else pg8000 (shipped in the AWS SDK for pandas layer)."""
    try:
        import psycopg
    except ImportError:
        import ssl

        import pg8000.dbapi

        return pg8000.dbapi.connect(
            host=host,
            password=password,
            user=user,
            database=dbname,
            port=port,
            ssl_context=ssl.create_default_context(),
        )
    return psycopg.connect(
        host=host, password=password, user=user, dbname=dbname, port=port, sslmode="require"
    )


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Read the connection details from SSM, write FILE_NAME under TABLE_LOCATION in S3.

    Environment: DATABASE_HOST and DATABASE_PASSWORD hold SSM parameter *names*;
    TABLE_LOCATION is the s3:// location of the table written; FILE_NAME the object name;
    DATABASE_USER, DATABASE_NAME, DATABASE_PORT are optional (every_election, 5432).
    """
    import boto3

    from bakery.lambdas.purge import split_location

    ssm = boto3.client("ssm")

    def parameter(env_name: str) -> str:
        name = os.environ[env_name]
        return ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]

    bucket, prefix = split_location(event.get("table_location") or os.environ["TABLE_LOCATION"])
    key = prefix + os.environ.get("FILE_NAME", "current_elections.csv")
    conn = _connect(
        parameter("DATABASE_HOST"),
        parameter("DATABASE_PASSWORD"),
        os.environ.get("DATABASE_USER", "every_election"),
        os.environ.get("DATABASE_NAME", "every_election"),
        int(os.environ.get("DATABASE_PORT", "5432")),
    )
    with tempfile.NamedTemporaryFile("w+", suffix=".csv", newline="", encoding="utf-8") as tmp:
        try:
            rows = write_export(conn, tmp)
        finally:
            conn.close()
        tmp.flush()
        boto3.client("s3").upload_file(tmp.name, bucket, key)
    return {"location": f"s3://{bucket}/{key}", "rows": rows}
