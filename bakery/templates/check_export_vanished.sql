{#- Implied by every export_by_key (its max_vanished_percent): one row, a message, when
    more than max_percent of the keys that are non-empty in the published table (a row;
    with `column`, a row holding a value there: a non-empty file of the product) would
    have no such row in the new table, i.e. their file would become empty or be deleted.
    No published key (the first publish): nothing can vanish, no row. The published
    table is read through the catalog name, the new one by ref(). -#}
{%- macro has(v) -%}
{%- if kind == "array" -%} coalesce(cardinality({{ v }}), 0) > 0
{%- elif kind == "string" -%} coalesce({{ v }}, '') <> ''
{%- else -%} {{ v }} IS NOT NULL
{%- endif -%}
{%- endmacro -%}
WITH published AS (
    SELECT DISTINCT {{ key }} AS k FROM {{ published_table }}
    WHERE {{ key }} IS NOT NULL{% if column %} AND {{ has(column) }}{% endif %}
),
new AS (
    SELECT DISTINCT {{ key }} AS k FROM {{ ref(table) }}
    WHERE {{ key }} IS NOT NULL{% if column %} AND {{ has(column) }}{% endif %}
),
counts AS (
    SELECT count(*) AS published_keys, count_if(n.k IS NULL) AS vanished
    FROM published AS p
    LEFT JOIN new AS n ON p.k = n.k
),
shares AS (
    SELECT published_keys, vanished,
        CAST(round(vanished * 1000.0 / published_keys) AS bigint) AS tenths
    FROM counts
    WHERE published_keys > 0 AND vanished * 100.0 > {{ max_percent }} * published_keys
)
SELECT
    'vanish guard: ' || CAST(vanished AS varchar) || ' of ' || CAST(published_keys AS varchar)
    || ' published {{ what }} of {{ export_id }} would {{ fate }} ('
    || CAST(CAST(floor(tenths / 10.0) AS bigint) AS varchar) || '.'
    || CAST(tenths % 10 AS varchar) || ' %, more than the {{ max_percent_text }} % '
    || 'max_vanished_percent allows); nothing was published' AS failure_message
FROM shares
