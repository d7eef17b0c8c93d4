{#- Built-in geo-join in Athena SQL: every point once, with the sorted distinct
    non-null values of the polygons containing it (an empty array where none). -#}
WITH polygons AS (
    SELECT {{ value }} AS value, ST_GeometryFromText({{ geometry }}) AS geom
    FROM {{ ref(polygons_table) }}
    WHERE {{ geometry }} IS NOT NULL AND {{ geometry }} <> '' AND {{ value }} IS NOT NULL
),
points AS (
    SELECT * FROM {{ ref(points_table) }}
    {%- if fan_out %}
    WHERE {{ fan_out }} = {{ param(fan_out) }}
    {%- endif %}
)
SELECT
    {%- for c in carried %}
    p.{{ c }},
    {%- endfor %}
    array_sort(array_distinct(filter(array_agg(g.value), v -> v IS NOT NULL))) AS {{ output_column }}
    {%- for c in partition_keys %},
    p.{{ c }}
    {%- endfor %}
FROM points AS p
LEFT JOIN polygons AS g
    ON p.{{ x }} IS NOT NULL AND ST_Contains(g.geom, ST_Point(p.{{ x }}, p.{{ y }}))
GROUP BY {% for c in carried + partition_keys %}p.{{ c }}{{ ", " if not loop.last }}{% endfor %}
