-- Raw AddressBase cleaned -> partitioned Parquet; a row that cannot be published gets a
-- reject_reason and goes to addressbase_rejects instead (the step's quarantine).
-- Postcodes are normalised: upper case, one space before the 3-character inward
-- code, so "sw1a1aa" and "SW1A 1AA" land in the same outcode. They must be letters and
-- digits starting with a letter (the first letter is the partition, the outcode a file
-- name) with an outcode of at least two characters.
-- Locations: EWKT or WKT points, any case, spaces allowed around the parts:
-- SRID=4326 (or no SRID) is longitude latitude; SRID=27700 is British National Grid
-- easting northing, converted to WGS 84 by bng_to_wgs84 (the same arithmetic on Athena
-- and DuckDB). An empty location (NULL, blank, POINT EMPTY) keeps NULL coordinates (the
-- address then matches no ballot). Only plain decimal numbers are read (no NaN, no
-- Infinity, exponents of at most two digits, so every engine reads them alike).
-- The regular expressions use only what Trino's and DuckDB's engines share.
{%- set num = '[-+]?(?:[0-9]{1,20}(?:[.][0-9]{0,20})?|[.][0-9]{1,20})(?:[eE][-+]?[0-9]{1,2})?' %}
{%- set point = '(?i)^ *(?:SRID *= *([0-9]{1,9}) *; *)?POINT *[(] *(' ~ num ~ ') +(' ~ num ~ ') *[)] *$' %}
{%- set no_point = '(?i)^ *(?:(?:SRID *= *[0-9]{1,9} *; *)?POINT *EMPTY)? *$' %}
{#- Nearly every row is written exactly so: matched without capture groups and read with
    string functions (a capturing regexp_extract costs ~3x as much on DuckDB) #}
{%- set canonical = '^SRID=4326;POINT[(]' ~ num ~ ' ' ~ num ~ '[)]$' %}
WITH raw AS (
    SELECT
        uprn,
        address,
        postcode AS raw_postcode,
        location AS raw_location,
        replace(postcode, ' ', '') AS pc,
        CASE
            WHEN regexp_like(location, '{{ canonical }}') THEN 'canonical'
            WHEN location IS NULL OR regexp_like(location, '{{ no_point }}') THEN 'none'
            WHEN regexp_like(location, '{{ point }}') THEN 'point'
            ELSE 'unparseable'
        END AS location_kind
    FROM {{ ref("addressbase_cleaned_raw") }}
),
parsed AS (
    SELECT
        uprn,
        address,
        raw_postcode,
        raw_location,
        pc,
        location_kind,
        CASE
            WHEN location_kind = 'canonical' THEN 4326
            -- Trino gives NULL for a group that matched nothing, DuckDB '': nullif for both
            WHEN location_kind = 'point'
                THEN CAST(coalesce(nullif(regexp_extract(raw_location, '{{ point }}', 1), ''), '4326') AS integer)
        END AS srid,
        CASE
            WHEN location_kind = 'canonical'
                -- between 'SRID=4326;POINT(' (16 characters) and the one space
                THEN CAST(substr(raw_location, 17, strpos(raw_location, ' ') - 17) AS double)
            WHEN location_kind = 'point'
                THEN CAST(nullif(regexp_extract(raw_location, '{{ point }}', 2), '') AS double)
        END AS x,
        CASE
            WHEN location_kind = 'canonical'
                -- between the one space and the closing ')'
                THEN CAST(
                    substr(
                        raw_location,
                        strpos(raw_location, ' ') + 1,
                        length(raw_location) - strpos(raw_location, ' ') - 1
                    ) AS double
                )
            WHEN location_kind = 'point'
                THEN CAST(nullif(regexp_extract(raw_location, '{{ point }}', 3), '') AS double)
        END AS y
    FROM raw
),
checked AS (
    SELECT
        uprn,
        address,
        raw_postcode,
        raw_location,
        pc,
        location_kind,
        srid,
        x,
        y,
        CASE
            WHEN uprn IS NULL OR uprn = '' THEN 'missing uprn'
            WHEN pc IS NULL OR pc = '' THEN 'missing postcode'
            WHEN NOT regexp_like(pc, '^[A-Za-z0-9]+$') THEN 'postcode has characters other than letters and digits'
            WHEN length(pc) < 5 THEN 'postcode without an outcode'
            WHEN NOT regexp_like(pc, '^[A-Za-z]') THEN 'postcode does not start with a letter'
            WHEN location_kind = 'unparseable' THEN 'unparseable location'
            WHEN location_kind = 'none' THEN NULL
            WHEN srid NOT IN (4326, 27700) THEN 'unsupported SRID'
            WHEN srid = 27700 AND NOT (x BETWEEN 0 AND 700000 AND y BETWEEN 0 AND 1300000)
                THEN 'easting or northing out of range'
            WHEN srid = 4326 AND NOT (x BETWEEN -180 AND 180) THEN 'longitude out of range'
            WHEN srid = 4326 AND NOT (y BETWEEN -90 AND 90) THEN 'latitude out of range'
        END AS reject_reason,
        -- only grid references in range reach the arithmetic (no square root of < 0)
        CASE
            WHEN location_kind IN ('canonical', 'point') AND srid = 27700
                AND x BETWEEN 0 AND 700000 AND y BETWEEN 0 AND 1300000
                THEN x
        END AS easting,
        CASE
            WHEN location_kind IN ('canonical', 'point') AND srid = 27700
                AND x BETWEEN 0 AND 700000 AND y BETWEEN 0 AND 1300000
                THEN y
        END AS northing
    FROM parsed
)
SELECT
    CASE WHEN reject_reason IS NULL THEN upper(substr(pc, 1, length(pc) - 3)) END AS outcode,
    uprn,
    address,
    CASE
        WHEN reject_reason IS NULL
            THEN upper(substr(pc, 1, length(pc) - 3) || ' ' || substr(pc, length(pc) - 2))
    END AS postcode,
    CASE
        WHEN reject_reason IS NOT NULL OR location_kind NOT IN ('canonical', 'point') THEN NULL
        WHEN srid = 27700 THEN wgs84_longitude
        ELSE x
    END AS longitude,
    CASE
        WHEN reject_reason IS NOT NULL OR location_kind NOT IN ('canonical', 'point') THEN NULL
        WHEN srid = 27700 THEN wgs84_latitude
        ELSE y
    END AS latitude,
    '{{ location("addressbase_cleaned_raw") }}' AS addressbase_source,
    reject_reason,
    raw_postcode,
    raw_location,
    CASE WHEN reject_reason IS NULL THEN upper(substr(pc, 1, 1)) END AS first_letter
FROM {{ bng_to_wgs84('checked', 'easting', 'northing') }} AS located
