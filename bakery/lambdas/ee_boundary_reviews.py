"""Export boundary reviews with the divisions they change (WKT) from EveryElection.

The contract, for the layer that calls this handler (a `lambda` step with
`handler: bakery.lambdas.ee_boundary_reviews.handler` that `writes` the table
`current_boundary_reviews_with_wkt`):

Which reviews: configuration, never code. The step's `environment` names them,
normally from a project variable (one value per environment in bakery.yaml):

- BOUNDARY_REVIEW_IDS: review ids, comma-separated (`963,964`);
- BOUNDARY_REVIEW_STATUSES: review statuses, comma-separated.

A review is exported when its id or its status is listed; at least one of the
two must be set (an empty selection is refused rather than exporting nothing).

What: for each selected `organisations_organisationboundaryreview`, two division
sets (*generations*): `old`, the organisation's division set with the latest
`end_date` (NULLs last, then the highest id), and `new`, the review's
`divisionset_id` (none while EE has not processed the review). For every
division of each set, one row per piece of its geography that EE has already
subdivided (`organisations_organisationdivision` ->
`organisations_divisiongeography` -> `organisations_divisiongeographysubdivided`).
A division without geography has no rows.

Table (Parquet, Snappy), at the step's table location (TABLE_LOCATION):

    <location>boundary_review_id=<id>/divisionset_generation=<old|new>/division_type=<type>/part-0.parquet

Partition keys (in the path only, Hive style): `boundary_review_id` (int),
`divisionset_generation` (string: old/new), `division_type` (string). Columns,
in this order, every one a string (NULL where EE has no value):

    slug, status, latest_event, consultation_url, legislation_title,
    effective_date (YYYY-MM-DD), review_created, review_modified
    (ISO 8601 UTC, e.g. 2025-01-31T09:15:00.000000Z), organisation_name
    (common_name), organisation_official_name, organisation_gss (the gss of the
    organisation's geography without end_date, else the latest ended),
    divisionset_id, divisionset_pmtiles_url (PMTILES_STORE +
    `<organisation slug>_<divisionset id>_<pmtiles_md5_hash>.pmtiles`, NULL when
    the set has no hash), division_slug, division_name,
    division_official_identifier, division_boundary_wkt (EPSG:4326, lon/lat)

Rows in a file are sorted by division_slug, then piece id. The Lambda uploads
every file, then deletes the objects under the location it did not write (a
review no longer selected, a division type gone), so readers never see an
empty table. Connection settings (SSM, TLS) are `ee_connection`'s.
`run_local(dsn, folder, environment)` is the same export for `bakery bake --ee-dsn`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bakery.lambdas import ee_connection

COLUMNS = [
    "slug",
    "status",
    "latest_event",
    "consultation_url",
    "legislation_title",
    "effective_date",
    "review_created",
    "review_modified",
    "organisation_name",
    "organisation_official_name",
    "organisation_gss",
    "divisionset_id",
    "divisionset_pmtiles_url",
    "division_slug",
    "division_name",
    "division_official_identifier",
    "division_boundary_wkt",
]
PARTITION_KEYS = ["boundary_review_id", "divisionset_generation", "division_type"]
PMTILES_STORE = "https://s3.eu-west-2.amazonaws.com/ee.public.data/pmtiles-store/"
FILE_NAME = "part-0.parquet"
ROWS_PER_BATCH = 2000
# What the local engine calls this handler's output in its messages.
OUTPUT_NAME = "boundary reviews"

# The partition keys come first (the export splits files on them), then COLUMNS.
# Parameters: the selected ids and statuses as JSON arrays (any length, empty too,
# the same way on psycopg and pg8000).
QUERY = f"""
WITH review AS (
    SELECT
        r.id,
        r.slug,
        r.status,
        r.latest_event,
        r.consultation_url,
        r.legislation_title,
        r.effective_date,
        r.created,
        r.modified,
        r.divisionset_id AS new_divisionset_id,
        o.slug AS organisation_slug,
        o.common_name,
        o.official_name,
        (
            SELECT og.gss
            FROM organisations_organisationgeography AS og
            WHERE og.organisation_id = o.id
            ORDER BY og.end_date DESC NULLS FIRST, og.start_date DESC NULLS LAST, og.id DESC
            LIMIT 1
        ) AS organisation_gss,
        (
            SELECT ds.id
            FROM organisations_organisationdivisionset AS ds
            WHERE ds.organisation_id = r.organisation_id
            ORDER BY ds.end_date DESC NULLS LAST, ds.id DESC
            LIMIT 1
        ) AS old_divisionset_id
    FROM organisations_organisationboundaryreview AS r
    JOIN organisations_organisation AS o ON o.id = r.organisation_id
    WHERE r.id IN (SELECT jsonb_array_elements_text(%s::jsonb)::integer)
       OR r.status IN (SELECT jsonb_array_elements_text(%s::jsonb))
),
generation AS (
    SELECT review.*, 'old' AS divisionset_generation, old_divisionset_id AS divisionset_id
    FROM review WHERE old_divisionset_id IS NOT NULL
    UNION ALL
    SELECT review.*, 'new', new_divisionset_id
    FROM review WHERE new_divisionset_id IS NOT NULL
)
SELECT
    g.id AS boundary_review_id,
    g.divisionset_generation,
    d.division_type,
    g.slug,
    g.status,
    g.latest_event,
    g.consultation_url,
    g.legislation_title,
    to_char(g.effective_date, 'YYYY-MM-DD') AS effective_date,
    to_char(g.created AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS review_created,
    to_char(g.modified AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS review_modified,
    g.common_name AS organisation_name,
    g.official_name AS organisation_official_name,
    g.organisation_gss,
    ds.id::text AS divisionset_id,
    CASE WHEN COALESCE(ds.pmtiles_md5_hash, '') <> '' THEN
        '{PMTILES_STORE}' || g.organisation_slug || '_' || ds.id || '_'
        || ds.pmtiles_md5_hash || '.pmtiles'
    END AS divisionset_pmtiles_url,
    d.slug AS division_slug,
    d.name AS division_name,
    d.official_identifier AS division_official_identifier,
    ST_AsText(p.geography) AS division_boundary_wkt
FROM generation AS g
JOIN organisations_organisationdivisionset AS ds ON ds.id = g.divisionset_id
JOIN organisations_organisationdivision AS d ON d.divisionset_id = ds.id
JOIN organisations_divisiongeography AS dg ON dg.division_id = d.id
JOIN organisations_divisiongeographysubdivided AS p ON p.division_geography_id = dg.id
ORDER BY g.id, g.divisionset_generation, d.division_type, d.slug, p.id
"""


class SelectionError(ValueError):
    """The configuration does not say which reviews to export; the message says what to set."""


def selection(environment: Mapping[str, str]) -> tuple[list[int], list[str]]:
    """(ids, statuses) from BOUNDARY_REVIEW_IDS and BOUNDARY_REVIEW_STATUSES."""
    raw_ids = environment.get("BOUNDARY_REVIEW_IDS") or ""
    statuses = [s.strip() for s in (environment.get("BOUNDARY_REVIEW_STATUSES") or "").split(",")]
    statuses = [s for s in statuses if s]
    ids = []
    for part in raw_ids.split(","):
        if not part.strip():
            continue
        try:
            ids.append(int(part))
        except ValueError:
            raise SelectionError(
                f"BOUNDARY_REVIEW_IDS={raw_ids!r}: {part.strip()!r} is not a review id; "
                "give ids separated by commas, e.g. 963,964"
            ) from None
    if not ids and not statuses:
        raise SelectionError(
            "no boundary reviews selected: set BOUNDARY_REVIEW_IDS (ids, comma-separated) or "
            "BOUNDARY_REVIEW_STATUSES (statuses, comma-separated) in the step's environment"
        )
    return ids, statuses


def partition_path(review_id: int, generation: str, division_type: str | None) -> str:
    """The Hive-style folder of one partition (values escaped as Hive does)."""
    values = [str(review_id), generation, division_type or "__HIVE_DEFAULT_PARTITION__"]
    return "/".join(
        f"{key}={quote(value, safe='')}" for key, value in zip(PARTITION_KEYS, values, strict=True)
    )


def write_partitions(rows: Iterable[tuple[Any, ...]], folder: Path) -> tuple[int, list[str]]:
    """Write rows ordered by the partition keys into one file per partition.

    Return (rows, relative paths of the files). At most ROWS_PER_BATCH rows are
    held at a time.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(name, pa.string()) for name in COLUMNS])
    files: list[str] = []
    writer: Any = None
    batch: list[tuple[Any, ...]] = []
    current: tuple[Any, ...] | None = None
    n = 0

    def flush() -> None:
        if batch:
            columns = list(zip(*batch, strict=True))
            writer.write_table(pa.table(columns, schema=schema))
            batch.clear()

    try:
        for row in rows:
            key, values = tuple(row[:3]), row[3:]
            if key != current:
                if writer is not None:
                    flush()
                    writer.close()
                relative = f"{partition_path(*key)}/{FILE_NAME}"
                (folder / relative).parent.mkdir(parents=True, exist_ok=True)
                writer = pq.ParquetWriter(folder / relative, schema, compression="snappy")
                files.append(relative)
                current = key
            batch.append(values)
            n += 1
            if len(batch) >= ROWS_PER_BATCH:
                flush()
        if writer is not None:
            flush()
    finally:
        if writer is not None:
            writer.close()
    return n, files


def write_export(conn: Any, folder: Path, environment: Mapping[str, str]) -> tuple[int, list[str]]:
    """Export the selected reviews from a DB-API connection into `folder`."""
    ids, statuses = selection(environment)
    params = (json.dumps([str(i) for i in ids]), json.dumps(statuses))
    return write_partitions(ee_connection.stream_rows(conn, QUERY, params), folder)


def run_local(dsn: str, folder: Path, environment: Mapping[str, str]) -> int:
    """The local engine's entry: the export from the database at `dsn` into `folder`."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        rows, _ = write_export(conn, folder, environment)
    return rows


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Export to TABLE_LOCATION in S3, then delete the objects there that were not written."""
    import boto3

    from bakery.lambdas import purge, s3uri

    ids, statuses = selection(os.environ)  # refuse a bad configuration before connecting
    # The staged location, from the layer's publish plan (bakery.planning.publish_plan):
    # the handler never writes the live table; the layer's publish does.
    bucket, prefix = s3uri.split(event.get("table_location") or os.environ["TABLE_LOCATION"])
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    s3 = boto3.client("s3")
    conn = ee_connection.connect_from_environment()
    try:
        encryption = ee_connection.encryption(conn)
        with tempfile.TemporaryDirectory(prefix="ee-boundary-reviews-") as tmp:
            rows, files = write_export(conn, Path(tmp), os.environ)
            for relative in files:
                s3.upload_file(str(Path(tmp) / relative), bucket, prefix + relative)
    finally:
        conn.close()
    written = {prefix + f for f in files}
    stale = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        stale += [o["Key"] for o in page.get("Contents", []) if o["Key"] not in written]
    for start in range(0, len(stale), purge.BATCH):
        purge.delete_batch(
            s3, bucket, stale[start : start + purge.BATCH], f"under s3://{bucket}/{prefix}"
        )
    print(
        f"exported {rows} rows of reviews ids={ids} statuses={statuses} in {len(files)} files "
        f"to s3://{bucket}/{prefix}; deleted {len(stale)} stale objects; connection {encryption}"
    )
    return {"location": f"s3://{bucket}/{prefix}", "rows": rows, "files": len(files)}
