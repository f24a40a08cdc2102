{#- Every click event up to the run date with its final quarantine reason (NULL = clean).
    Adds unknown products, service items and duplicates: a repeated event_id (or, without one, a repeated
    identical event) is duplicate_event; the first delivered copy is kept. -#}
with

clicks as (
    select * exclude (raw_record) from {{ ref('stg_shop__clicks') }}
),

raw_records as (
    select load_id, source_row_number, raw_record from {{ ref('stg_shop__clicks') }}
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
    {{ service_product_ids('clicks', 'service_items') }}
),

checked as (
    select
        clicks.*,
        coalesce(
            clicks.row_quarantine_reason,
            {{ first_failure([
                ("service_product_ids.product_id is not null", "non_product_item"),
                ("catalogue.product_id is null", "unknown_product"),
            ]) }}
        ) as relational_quarantine_reason
    from clicks
    left join service_product_ids on clicks.product_id = service_product_ids.product_id
    left join catalogue on clicks.product_id = catalogue.product_id
),

ranked as (
    select
        *,
        row_number() over (
            partition by relational_quarantine_reason is null,
                coalesce(
                    'id:' || event_id,
                    'event:' || concat_ws('|', session_id, user_id, product_id, event_type, occurred_at)
                )
            order by delivery_date, load_id, source_row_number
        ) as copy_number
    from checked
),

decided as materialized (  -- read twice by attach_raw_record: computed once
    select
        * exclude (row_quarantine_reason, relational_quarantine_reason, copy_number),
        coalesce(
            relational_quarantine_reason,
            case when copy_number > 1 then 'duplicate_event' end
        ) as quarantine_reason
    from ranked
),

final as (
    {{ attach_raw_record('decided', 'raw_records') }}
)

select * from final
