{#- Implied by an athena_query's quarantine: one row, a message, when more rows were
    rejected than its limits allow, naming the first rejected rows by key (NULL keys
    last). Read before publish: both tables are this run's. -#}
WITH counts AS (
    SELECT r.n AS rejected, r.n + a.n AS total
    FROM (SELECT count(*) AS n FROM {{ ref(rejects) }}) AS r
    CROSS JOIN (SELECT count(*) AS n FROM {{ ref(table) }}) AS a
),
over_limit AS (
    SELECT
        rejected,
        total,
        CAST(round(rejected * 10000.0 / greatest(total, 1)) AS bigint) AS hundredths
    FROM counts
    WHERE
        {%- if max_rows is not none %} rejected > {{ max_rows }}{% endif %}
        {%- if max_rows is not none and max_percent is not none %} OR{% endif %}
        {%- if max_percent is not none %} rejected * 100.0 > {{ max_percent }} * total{% endif %}
),
first_rejected AS (
    SELECT {{ key }} AS k, {{ reason }} AS why
    FROM {{ ref(rejects) }}
    ORDER BY {{ key }} NULLS LAST, {{ reason }}
    LIMIT {{ examples }}
),
named AS (
    SELECT array_join(
        array_agg(
            '{{ key }}=' || coalesce(CAST(k AS varchar), 'NULL') || ' (' || why || ')'
            ORDER BY k NULLS LAST, why
        ),
        '; '
    ) AS names
    FROM first_rejected
)
SELECT
    'quarantine: ' || CAST(rejected AS varchar) || ' of ' || CAST(total AS varchar)
    || ' rows rejected (' || CAST(CAST(floor(hundredths / 100.0) AS bigint) AS varchar) || '.'
    || lpad(CAST(hundredths % 100 AS varchar), 2, '0') || ' %), over the limit of {{ limits }}; '
    || 'the first by {{ key }}: ' || names || '; nothing was published' AS failure_message
FROM over_limit CROSS JOIN named
