{#- Clean order lines. One row per accepted order line; returns and cancellations are negative quantities. -#}
with

classified as (
    select * from {{ ref('int_orders__classified') }}
),

final as (
    select
        ---------- ids
        concat(load_id, ':', source_row_number) as order_line_key,
        order_id,
        line_no,
        user_id,
        product_id,
        ---------- amounts
        quantity,
        unit_price,
        cast(quantity * unit_price as decimal(18, 3)) as line_amount,
        currency,
        status,
        quantity < 0 as is_return,
        country,
        ---------- timestamps
        ordered_at,
        cast(ordered_at as date) as order_date,
        delivery_date
    from classified
    where quarantine_reason is null
)

select * from final
