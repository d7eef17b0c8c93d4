-- No address lost or duplicated on the way: the UPRNs published and the UPRNs rejected,
-- together, are the raw release's (count, distinct count and an order-insensitive
-- checksum, as a same_set check compares). One row, naming the counts, when they differ.
WITH raw AS (
    SELECT count(uprn) AS n, count(DISTINCT uprn) AS d, checksum(uprn) AS s
    FROM {{ ref("addressbase_cleaned_raw") }}
),
written AS (
    SELECT count(uprn) AS n, count(DISTINCT uprn) AS d, checksum(uprn) AS s
    FROM (
        SELECT uprn FROM {{ ref("addressbase_partitioned") }}
        UNION ALL
        SELECT uprn FROM {{ ref("addressbase_rejects") }}
    ) AS both_tables
)
SELECT
    written.n AS written_count,
    raw.n AS raw_count,
    written.d AS written_distinct,
    raw.d AS raw_distinct
FROM written CROSS JOIN raw
WHERE written.n <> raw.n OR written.d <> raw.d OR written.s IS DISTINCT FROM raw.s
