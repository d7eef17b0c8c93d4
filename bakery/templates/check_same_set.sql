{#- Returns one row describing the difference when the two column sets differ:
    count, distinct count and an order-insensitive checksum; also when neither side
    holds a value (nothing was compared), unless allow_empty. -#}
WITH l AS (
    SELECT count({{ column }}) AS n, count(DISTINCT {{ column }}) AS d, checksum({{ column }}) AS s
    FROM {{ ref(left) }}
),
r AS (
    SELECT count({{ column }}) AS n, count(DISTINCT {{ column }}) AS d, checksum({{ column }}) AS s
    FROM {{ ref(right) }}
)
SELECT l.n AS left_count, r.n AS right_count, l.d AS left_distinct, r.d AS right_distinct
FROM l CROSS JOIN r
WHERE l.n <> r.n OR l.d <> r.d OR l.s IS DISTINCT FROM r.s
{%- if not allow_empty %} OR (l.n = 0 AND r.n = 0){% endif %}
