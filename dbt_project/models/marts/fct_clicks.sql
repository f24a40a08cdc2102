{#- Clean click events. One row per accepted event.
    Incremental like int_clicks__classified: the pre-hook removes every row that model re-classified tonight
    (classified_on = run date), and the clean ones among them are inserted again; a full refresh rebuilds all. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{% if is_incremental() %}
        delete from {{ this }} where click_key in (
            select concat(load_id, ':', source_row_number)
            from {{ ref('int_clicks__classified') }}
            where classified_on = {{ run_date() }}
        )
    {% endif %}",
) }}
with

classified as (
    select * from {{ ref('int_clicks__classified') }}
    {% if is_incremental() %} where classified_on = {{ run_date() }} {% endif %}
),

final as (
    select
        concat(load_id, ':', source_row_number) as click_key,
        event_id,
        session_id,
        user_id,
        product_id,
        event_type,
        occurred_at,
        cast(occurred_at as date) as event_date,
        delivery_date
    from classified
    where quarantine_reason is null
)

select * from final
