-- One boundary review and one division type (a row of the for_each): every address
-- within a division of the old set AND a division of the new set, one row per such
-- (old, new) pair, with what changed.
--
-- "Within" is ST_Within on each subdivided piece: a point on a division's edge is in
-- neither division (nor is one on the edge between two pieces of one division). A pair has the same boundary when both divisions hold exactly the
-- same addresses (|old and new| = |old| = |new|), the same name when the slugs are
-- equal. A division type that exists only in the old set (or only the new) gives no
-- rows: no address is within both an old and a new division of it.
-- Runtime values (the for_each row) appear only in WHERE clauses, as Athena requires.
WITH pieces AS (
    SELECT
        boundary_review_id,
        division_type,
        divisionset_generation AS generation,
        division_slug,
        division_name,
        division_official_identifier,
        divisionset_pmtiles_url,
        consultation_url,
        legislation_title,
        effective_date,
        organisation_name,
        organisation_official_name,
        organisation_gss,
        ST_GeometryFromText(division_boundary_wkt) AS piece
    FROM {{ ref("current_boundary_reviews_with_wkt") }}
    -- Parameters are string literals on Athena: compare the integer id as text.
    WHERE CAST(boundary_review_id AS varchar) = {{ param("boundary_review_id") }}
      AND division_type = {{ param("division_type") }}
),
extent AS (
    SELECT
        min(ST_XMin(piece)) AS x0,
        max(ST_XMax(piece)) AS x1,
        min(ST_YMin(piece)) AS y0,
        max(ST_YMax(piece)) AS y1
    FROM pieces
),
addresses AS (
    -- Only the addresses inside the pieces' bounding box go to the spatial join.
    SELECT a.uprn, a.address, a.postcode, a.addressbase_source, ST_Point(a.longitude, a.latitude) AS point
    FROM {{ ref("addressbase.addressbase_partitioned") }} AS a
    CROSS JOIN extent AS e
    WHERE a.longitude BETWEEN e.x0 AND e.x1 AND a.latitude BETWEEN e.y0 AND e.y1
),
within AS (
    SELECT DISTINCT a.uprn, p.generation, p.division_slug
    FROM addresses AS a
    JOIN pieces AS p ON ST_Within(a.point, p.piece)
),
divisions AS (
    SELECT
        generation,
        division_slug,
        arbitrary(division_name) AS division_name,
        arbitrary(division_official_identifier) AS division_official_identifier,
        arbitrary(divisionset_pmtiles_url) AS divisionset_pmtiles_url
    FROM pieces
    GROUP BY generation, division_slug
),
review AS (
    SELECT
        arbitrary(boundary_review_id) AS boundary_review_id,
        arbitrary(division_type) AS division_type,
        arbitrary(consultation_url) AS consultation_url,
        arbitrary(legislation_title) AS legislation_title,
        arbitrary(effective_date) AS effective_date,
        arbitrary(organisation_name) AS organisation_name,
        arbitrary(organisation_official_name) AS organisation_official_name,
        arbitrary(organisation_gss) AS organisation_gss
    FROM pieces
),
sizes AS (
    SELECT generation, division_slug, count(*) AS addresses
    FROM within
    GROUP BY generation, division_slug
),
pairs AS (
    SELECT o.uprn, o.division_slug AS old_slug, n.division_slug AS new_slug
    FROM within AS o
    JOIN within AS n ON n.uprn = o.uprn
    WHERE o.generation = 'old' AND n.generation = 'new'
),
shared AS (
    SELECT old_slug, new_slug, count(*) AS addresses
    FROM pairs
    GROUP BY old_slug, new_slug
),
scenarios AS (
    SELECT
        s.old_slug,
        s.new_slug,
        CASE
            WHEN s.addresses = so.addresses AND s.addresses = sn.addresses
                THEN CASE WHEN s.old_slug = s.new_slug THEN 'NO_CHANGE' ELSE 'NAME_CHANGED' END
            WHEN s.old_slug = s.new_slug THEN 'BOUNDARY_CHANGED'
            ELSE 'BOTH_CHANGED'
        END AS change_scenario
    FROM shared AS s
    JOIN sizes AS so ON so.generation = 'old' AND so.division_slug = s.old_slug
    JOIN sizes AS sn ON sn.generation = 'new' AND sn.division_slug = s.new_slug
)
SELECT
    a.uprn,
    a.address,
    a.postcode,
    a.addressbase_source,
    MAP(
        ARRAY[
            'division_type',
            'old_division_slug', 'old_division_name', 'old_division_official_identifier',
            'old_divisionset_pmtiles_url',
            'new_division_slug', 'new_division_name', 'new_division_official_identifier',
            'new_divisionset_pmtiles_url',
            'change_scenario'
        ],
        ARRAY[
            r.division_type,
            od.division_slug, od.division_name, od.division_official_identifier,
            od.divisionset_pmtiles_url,
            nd.division_slug, nd.division_name, nd.division_official_identifier,
            nd.divisionset_pmtiles_url,
            c.change_scenario
        ]
    ) AS boundary_change_details,
    MAP(
        ARRAY[
            'consultation_url', 'legislation_title', 'effective_date', 'organisation_name',
            'organisation_official_name', 'organisation_gss'
        ],
        ARRAY[
            r.consultation_url, r.legislation_title, r.effective_date, r.organisation_name,
            r.organisation_official_name, r.organisation_gss
        ]
    ) AS boundary_review_details,
    r.boundary_review_id,
    r.division_type
FROM pairs AS p
JOIN addresses AS a ON a.uprn = p.uprn
JOIN scenarios AS c ON c.old_slug = p.old_slug AND c.new_slug = p.new_slug
JOIN divisions AS od ON od.generation = 'old' AND od.division_slug = p.old_slug
JOIN divisions AS nd ON nd.generation = 'new' AND nd.division_slug = p.new_slug
CROSS JOIN review AS r
