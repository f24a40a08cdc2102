{#- Clean reviews. One row per accepted review. -#}
with

classified as (
    select * from {{ ref('int_reviews__classified') }}
),

final as (
    select
        review_id,
        product_id,
        user_id,
        rating,
        title,
        body,
        created_at,
        delivery_date
    from classified
    where quarantine_reason is null
)

select * from final
