{#- Every catalogue row up to the run date with its final quarantine reason (NULL = a clean product version).
    Within one delivery the last row for a product wins; earlier rows are duplicate_product_row. -#}
with

products as (
    select * exclude (raw_record) from {{ ref('stg_shop__products') }}
),

raw_records as (
    select load_id, source_row_number, raw_record from {{ ref('stg_shop__products') }}
),

service_items as (
    select * from {{ ref('service_items') }}
),

service_product_ids as (
    {{ service_product_ids('products', 'service_items') }}
),

checked as (
    select
        products.*,
        coalesce(
            products.row_quarantine_reason,
            case when service_product_ids.product_id is not null then 'non_product_item' end
        ) as relational_quarantine_reason
    from products
    left join service_product_ids using (product_id)
),

ranked as (
    select
        *,
        row_number() over (
            partition by relational_quarantine_reason is null, load_id, product_id
            order by source_row_number desc
        ) as position_from_end_of_delivery
    from checked
),

decided as materialized (  -- read twice by attach_raw_record: computed once
    select
        * exclude (row_quarantine_reason, relational_quarantine_reason, position_from_end_of_delivery),
        coalesce(
            relational_quarantine_reason,
            case when position_from_end_of_delivery > 1 then 'duplicate_product_row' end
        ) as quarantine_reason
    from ranked
),

final as (
    {{ attach_raw_record('decided', 'raw_records') }}
)

select * from final
