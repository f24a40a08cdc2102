{#- Shared cleaning helpers used by the staging and intermediate models. -#}

{#- The night being built, as a DATE: `--vars '{run_date: ...}'` when given (unit tests set it that way), else
    the environment variable SHOPFLOW_DBT_RUN_DATE that shopflow sets for each build, else 9999-12-31 (every
    delivery). Read only when executing: dbt re-parses the whole project whenever --vars change and every model
    that read a changed environment variable while parsing, which would cost each night 2-4 s for a value that
    parsing never needs. -#}
{% macro run_date() -%}
    {%- set night = env_var("SHOPFLOW_DBT_RUN_DATE", "9999-12-31") if execute else "9999-12-31" -%}
    cast('{{ var("run_date", night) }}' as date)
{%- endmacro %}

{#- Trimmed text, with blank strings as NULL. -#}
{% macro clean_text(column) -%}
    nullif(trim({{ column }}), '')
{%- endmacro %}

{#- A quarantine reason: the first failing check wins, NULL means the row is clean.
    checks: a list of (sql condition, reason code) pairs, in priority order. -#}
{% macro first_failure(checks) -%}
    case
    {%- for condition, reason in checks %}
        when {{ condition }} then '{{ reason }}'
    {%- endfor %}
    end
{%- endmacro %}

{#- The checks every event timestamp gets: unparsable, later than its delivery day allows, or before the shop
    existed. raw_column is the delivered text, parsed_column the try_cast result. -#}
{% macro timestamp_checks(raw_column, parsed_column) -%}
    {%- do return([
        (parsed_column ~ " is null", "bad_timestamp"),
        (parsed_column ~ " >= _delivery_date + interval 1 day + interval " ~ var("max_clock_skew_hours") ~ " hour",
            "future_timestamp"),
        (parsed_column ~ " < timestamp '" ~ var("shop_opened_at") ~ "'", "before_shop_opened"),
    ]) -%}
{%- endmacro %}

{#- True when a delivered value is present but is not a number of the given type. -#}
{% macro is_unparsable(raw_column, sql_type) -%}
    ({{ clean_text(raw_column) }} is not null and try_cast({{ clean_text(raw_column) }} as {{ sql_type }}) is null)
{%- endmacro %}

{#- The distinct product ids of a CTE that match a service_items pattern (postage, fees, vouchers, ...).
    Matching distinct ids keeps the regular expressions off the (possibly huge) event tables. -#}
{% macro service_product_ids(rows_cte, service_items_cte) -%}
    select distinct ids.product_id
    from (select distinct product_id from {{ rows_cte }} where product_id is not null) as ids
    inner join {{ service_items_cte }}
        on regexp_matches(ids.product_id, {{ service_items_cte }}.pattern)
{%- endmacro %}

{#- A quarantine model's body: every quarantined row of a classified model, with its delivered values as JSON. -#}
{% macro quarantine_rows(classified_model, entity) -%}
with

classified as (
    select * from {{ classified_model }}
),

final as (
    select
        '{{ entity }}' as entity,
        load_id,
        source_row_number,
        source_file,
        delivery_date,
        quarantine_reason,
        cast(to_json(raw_record) as varchar) as raw_record,
        {{ run_date() }} as run_date
    from classified
    where quarantine_reason is not null
)

select * from final
{%- endmacro %}

{#- The lineage every staging model carries from raw: where the row came from, and whether a later delivery of
    the same day replaced its file (load ids only grow, so the newest file of a day has the largest load id). -#}
{% macro lineage_columns() -%}
        _load_id as load_id,
        _row_number as source_row_number,
        _source_file as source_file,
        _delivery_date,
        _load_id < max(_load_id) over (partition by _delivery_date) as is_superseded
{%- endmacro %}

{#- The body of a classified model's final CTE: its rows with the delivered values (raw_record) of quarantined rows
    attached, NULL for clean rows. rows_cte holds every classified row without raw_record, so the row_number windows
    do not carry the struct (BENCHMARKS.md §4: int_orders__classified ~25 % faster on Online Retail ×3, no change for
    clicks); raw_records_cte is the staging model's (load_id, source_row_number, raw_record), read again for the
    quarantined rows only. rows_cte is read twice: declare it `as materialized` (the 10M-event int_clicks__classified
    took 20.5 s with it computed twice, 13.3 s with it materialized). -#}
{% macro attach_raw_record(rows_cte, raw_records_cte) -%}
    select
        {{ rows_cte }}.*,
        quarantined.raw_record
    from {{ rows_cte }}
    left join (
        select {{ raw_records_cte }}.*
        from {{ raw_records_cte }}
        inner join {{ rows_cte }}
            on {{ raw_records_cte }}.load_id = {{ rows_cte }}.load_id
            and {{ raw_records_cte }}.source_row_number = {{ rows_cte }}.source_row_number
        where {{ rows_cte }}.quarantine_reason is not null
    ) as quarantined
        on {{ rows_cte }}.load_id = quarantined.load_id
        and {{ rows_cte }}.source_row_number = quarantined.source_row_number
{%- endmacro %}
