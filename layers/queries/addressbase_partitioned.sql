-- Raw AddressBase cleaned -> partitioned Parquet.
-- Postcodes are normalised: upper case, one space before the 3-character inward
-- code, so "sw1a1aa" and "SW1A 1AA" land in the same outcode. A row whose location
-- is empty or not an EWKT point keeps NULL coordinates (it then matches no ballot).
-- The partition column comes last: UNLOAD requires it.
WITH cleaned AS (
    SELECT
        uprn,
        address,
        upper(replace(trim(postcode), ' ', '')) AS pc,
        CASE WHEN location LIKE 'SRID=4326;POINT(%' THEN split_part(location, ';', 2) END AS wkt
    FROM {{ ref("addressbase_cleaned_raw") }}
)
SELECT
    substr(pc, 1, length(pc) - 3) AS outcode,
    uprn,
    address,
    substr(pc, 1, length(pc) - 3) || ' ' || substr(pc, length(pc) - 2) AS postcode,
    ST_X(ST_GeometryFromText(wkt)) AS longitude,
    ST_Y(ST_GeometryFromText(wkt)) AS latitude,
    '{{ location("addressbase_cleaned_raw") }}' AS addressbase_source,
    substr(pc, 1, 1) AS first_letter
FROM cleaned
