{#- The catalogue as of the run date. One row per product: its latest clean version. -#}
with

classified as (
    select * from {{ ref('int_products__classified') }}
),

versions as (
    select
        *,
        row_number() over (
            partition by product_id order by delivery_date desc, load_id desc, source_row_number desc
        ) as recency,
        min(delivery_date) over (partition by product_id) as first_listed_date,
        count(*) over (partition by product_id) as n_versions
    from classified
    where quarantine_reason is null
),

final as (
    select
        product_id,
        title,
        category,
        brand,
        description,
        price,
        currency,
        attributes,
        -- identifies the product's content: embeddings and generated texts are recomputed only when it changes
        md5(concat_ws('|', title, category, brand, description, price, currency, attributes)) as content_hash,
        updated_at,
        first_listed_date,
        delivery_date as last_changed_date,
        n_versions
    from versions
    where recency = 1
)

select * from final
