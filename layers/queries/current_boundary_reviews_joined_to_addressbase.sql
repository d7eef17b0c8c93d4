-- Every address once, with one JSON object text per boundary review that changes one of
-- its divisions, ordered by review id; an empty array for an address in no review.
-- The objects come from CAST(MAP(...) AS JSON), whose keys Trino writes sorted:
-- {"boundary_review_details":{...},"boundary_review_id":963,"changes":[{...},...]},
-- the changes ordered by division type, then old and new slug.
WITH per_review AS (
    SELECT
        uprn,
        boundary_review_id,
        arbitrary(boundary_review_details) AS boundary_review_details,
        array_agg(
            boundary_change_details
            ORDER BY division_type, boundary_change_details['old_division_slug'],
                boundary_change_details['new_division_slug']
        ) AS changes
    FROM {{ ref("addresses_to_boundary_change") }}
    GROUP BY uprn, boundary_review_id
),
per_address AS (
    SELECT
        uprn,
        array_agg(
            json_format(CAST(MAP(
                ARRAY['boundary_review_id', 'boundary_review_details', 'changes'],
                ARRAY[
                    CAST(boundary_review_id AS JSON),
                    CAST(boundary_review_details AS JSON),
                    CAST(changes AS JSON)
                ]
            ) AS JSON))
            ORDER BY boundary_review_id
        ) AS boundary_reviews
    FROM per_review
    GROUP BY uprn
)
SELECT
    a.outcode,
    a.uprn,
    a.address,
    a.postcode,
    a.addressbase_source,
    COALESCE(r.boundary_reviews, ARRAY[]) AS boundary_reviews,
    a.first_letter
FROM {{ ref("addressbase.addressbase_partitioned") }} AS a
LEFT JOIN per_address AS r ON r.uprn = a.uprn
