{#- Clean click events. One row per accepted event. -#}
with

classified as (
    select * from {{ ref('int_clicks__classified') }}
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
