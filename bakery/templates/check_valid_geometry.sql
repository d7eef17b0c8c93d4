{#- Input guard: one row when any piece's WKT is not a valid geometry (self-intersecting,
    unclosed rings...): how many pieces are invalid, and the first one's label. Empty
    values are no geometry (a ballot with none matches no address), not invalid ones. -#}
SELECT count(*) AS invalid_pieces
    {%- if label %}, min({{ label }}) AS first_invalid_{{ label }}{% endif %}
FROM {{ ref(table) }}
WHERE {{ column }} IS NOT NULL AND {{ column }} <> ''
    AND NOT ST_IsValid(ST_GeometryFromText({{ column }}))
HAVING count(*) > 0
