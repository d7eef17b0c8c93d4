{#- Input guard: one row when any piece's WKT is not a valid geometry (self-intersecting,
    unclosed rings...), or, with `areal`, not a polygon or multipolygon (a POINT or
    LINESTRING is valid, but would hand its label to the points lying on it): how many
    pieces fail, and the first one's label. Empty values are no geometry (a ballot with
    none matches no address), not invalid ones. ST_GeometryType names the type
    'ST_Polygon' on Athena (Trino, https://trino.io/docs/current/functions/geospatial.html)
    and 'POLYGON' on DuckDB: both are accepted, in any case. -#}
{%- set areal_sql -%}
upper(CAST(ST_GeometryType(ST_GeometryFromText({{ column }})) AS varchar))
    IN ('POLYGON', 'MULTIPOLYGON', 'ST_POLYGON', 'ST_MULTIPOLYGON')
{%- endset -%}
SELECT count(*) AS invalid_pieces
    {%- if label %}, min({{ label }}) AS first_invalid_{{ label }}{% endif %}
FROM {{ ref(table) }}
WHERE {{ column }} IS NOT NULL AND {{ column }} <> ''
    AND NOT (ST_IsValid(ST_GeometryFromText({{ column }}))
    {%- if areal %}
        AND {{ areal_sql }}
    {%- endif %})
HAVING count(*) > 0
