{#- Every review up to the run date with its final quarantine reason (NULL = clean).
    Adds unknown products and repeated review ids (duplicate_review_id; the first delivered copy is kept). -#}
with

reviews as (
    select * exclude (raw_record) from {{ ref('stg_shop__reviews') }}
),

raw_records as (
    select load_id, source_row_number, raw_record from {{ ref('stg_shop__reviews') }}
),

products as (
    select * from {{ ref('int_products__classified') }}
),

catalogue as (
    select distinct product_id from products where quarantine_reason is null
),

checked as (
    select
        reviews.*,
        coalesce(
            reviews.row_quarantine_reason,
            case when catalogue.product_id is null then 'unknown_product' end
        ) as relational_quarantine_reason
    from reviews
    left join catalogue on reviews.product_id = catalogue.product_id
),

ranked as (
    select
        *,
        row_number() over (
            partition by relational_quarantine_reason is null, review_id
            order by delivery_date, load_id, source_row_number
        ) as copy_number
    from checked
),

decided as materialized (  -- read twice by attach_raw_record: computed once
    select
        * exclude (row_quarantine_reason, relational_quarantine_reason, copy_number),
        coalesce(
            relational_quarantine_reason,
            case when copy_number > 1 then 'duplicate_review_id' end
        ) as quarantine_reason
    from ranked
),

final as (
    {{ attach_raw_record('decided', 'raw_records') }}
)

select * from final
