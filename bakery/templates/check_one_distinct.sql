{#- Returns one row when the column does not hold exactly one distinct value. -#}
SELECT count(DISTINCT {{ column }}) AS distinct_values
FROM {{ ref(table) }}
HAVING count(DISTINCT {{ column }}) <> 1
