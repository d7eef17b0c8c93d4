{#- Implied by export_by_key's unique_by, over the whole table: one row when rows with
    the same unique_by value differ in another exported column (identical duplicates
    are fine: the export keeps one). Names the value and the keys it is exported under. -#}
SELECT {{ unique_by }}, count(*) AS conflicting_versions,
    min({{ key }}) AS first_{{ key }}, max({{ key }}) AS last_{{ key }}
FROM (
    SELECT DISTINCT {% for c in columns %}{{ c }}{{ ", " if not loop.last }}{% endfor %}
    FROM {{ ref(table) }}
) AS versions
GROUP BY {{ unique_by }}
HAVING count(*) > 1
ORDER BY {{ unique_by }}
LIMIT 1
