{#- Returns one row, a message, when more than max_percent of the published rows that
    have a value in `column` would lose it: their key is gone from the new table, or its
    value there is NULL or empty. No published rows (a first run): nothing to compare.
    The published table is read through the catalog name, the new one by ref(). -#}
{%- macro has(v) -%}
{%- if kind == "array" -%} coalesce(cardinality({{ v }}), 0) > 0
{%- elif kind == "string" -%} coalesce({{ v }}, '') <> ''
{%- else -%} {{ v }} IS NOT NULL
{%- endif -%}
{%- endmacro -%}
WITH published AS (
    SELECT {{ key }} AS k, {{ column }} AS v FROM {{ published_table }}
),
new AS (
    SELECT {{ key }} AS k, {{ column }} AS v FROM {{ ref(table) }}
),
counts AS (
    SELECT
        count(*) AS published_rows,
        count_if({{ has("p.v") }} AND NOT ({{ has("n.v") }})) AS lost
    FROM published AS p
    LEFT JOIN new AS n ON p.k = n.k
),
shares AS (
    SELECT published_rows, lost, CAST(round(lost * 1000.0 / published_rows) AS bigint) AS tenths
    FROM counts
    WHERE published_rows > 0 AND lost * 100.0 > {{ max_percent }} * published_rows
)
SELECT
    'publish guard: ' || CAST(lost AS varchar) || ' of ' || CAST(published_rows AS varchar)
    || ' published rows of {{ table_name }} would lose their {{ column }} ('
    || CAST(CAST(floor(tenths / 10.0) AS bigint) AS varchar) || '.'
    || CAST(tenths % 10 AS varchar) || ' %, more than the {{ max_percent_text }} % allowed); '
    || 'nothing was published' AS failure_message
FROM shares
