{#- Every order line up to the run date with its final quarantine reason (NULL = clean).
    Adds the checks that need other rows: service items, unknown products, and duplicates (the first delivered
    copy is kept; an exact repeat is duplicate_row, a repeated (order_id, line_no) with other values duplicate_line). -#}
with

order_lines as (
    select * exclude (raw_record) from {{ ref('stg_shop__orders') }}
),

raw_records as (
    select load_id, source_row_number, raw_record from {{ ref('stg_shop__orders') }}
),

products as (
    select * from {{ ref('int_products__classified') }}
),

service_items as (
    select * from {{ ref('service_items') }}
),

catalogue as (
    select distinct product_id from products where quarantine_reason is null
),

service_product_ids as (
    {{ service_product_ids('order_lines', 'service_items') }}
),

checked as (
    select
        order_lines.*,
        coalesce(
            order_lines.row_quarantine_reason,
            {{ first_failure([
                ("service_product_ids.product_id is not null", "non_product_item"),
                ("catalogue.product_id is null", "unknown_product"),
            ]) }}
        ) as relational_quarantine_reason
    from order_lines
    left join service_product_ids on order_lines.product_id = service_product_ids.product_id
    left join catalogue on order_lines.product_id = catalogue.product_id
),

ranked as (
    select
        *,
        row_number() over (
            partition by relational_quarantine_reason is null,
                order_id, line_no, user_id, product_id, quantity, unit_price, ordered_at, currency, status, country
            order by delivery_date, load_id, source_row_number
        ) as copy_number,
        row_number() over (
            partition by relational_quarantine_reason is null, order_id, line_no
            order by delivery_date, load_id, source_row_number
        ) as line_number_use
    from checked
),

decided as materialized (  -- read twice by attach_raw_record: computed once
    select
        * exclude (row_quarantine_reason, relational_quarantine_reason, copy_number, line_number_use),
        coalesce(
            relational_quarantine_reason,
            {{ first_failure([
                ("copy_number > 1", "duplicate_row"),
                ("line_no is not null and line_number_use > 1", "duplicate_line"),
            ]) }}
        ) as quarantine_reason
    from ranked
),

final as (
    {{ attach_raw_record('decided', 'raw_records') }}
)

select * from final
