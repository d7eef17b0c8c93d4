{#- Input guard: one row (the count) when the table holds fewer than `min` rows. -#}
SELECT count(*) AS row_count, {{ min }} AS at_least
FROM {{ ref(table) }}
HAVING count(*) < {{ min }}
