{#- Implied by export_by_key's unique_by, over the whole table: one row when rows with
    the same unique_by value differ in another exported column (identical duplicates
    are fine: the export keeps one). Names the value and the keys it is exported under.
    Two passes so memory follows the repeated values, not the table: the values seen
    more than once (one grouped column), then the distinct versions of those rows only.
    IS NOT DISTINCT FROM keeps a repeated NULL value in, as grouping does. -#}
WITH repeated AS (
    SELECT {{ unique_by }} AS repeated_value
    FROM {{ ref(table) }}
    GROUP BY {{ unique_by }}
    HAVING count(*) > 1
)
SELECT {{ unique_by }}, count(*) AS conflicting_versions,
    min({{ key }}) AS first_{{ key }}, max({{ key }}) AS last_{{ key }}
FROM (
    SELECT DISTINCT {% for c in columns %}t.{{ c }}{{ ", " if not loop.last }}{% endfor %}
    FROM {{ ref(table) }} AS t
    JOIN repeated ON t.{{ unique_by }} IS NOT DISTINCT FROM repeated.repeated_value
) AS versions
GROUP BY {{ unique_by }}
HAVING count(*) > 1
ORDER BY {{ unique_by }}
LIMIT 1
