{#- Input guard: one row when any row's `column` is NULL, empty or only spaces (a blank
    id would become a '' value downstream): how many, and the first one's label. -#}
SELECT count(*) AS blank_rows
    {%- if label %}, min({{ label }}) AS first_blank_row_{{ label }}{% endif %}
FROM {{ ref(table) }}
WHERE coalesce(trim({{ column }}), '') = ''
HAVING count(*) > 0
