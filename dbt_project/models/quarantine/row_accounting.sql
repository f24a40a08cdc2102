{#- Row accounting per entity for the run date: every raw row in scope is either clean or quarantined.
    One row per entity; is_balanced must be true (tested). -#}
with

staged as (
    select 'orders' as entity, count(*) as raw_rows from {{ ref('stg_shop__orders') }}
    union all
    select 'clicks', count(*) from {{ ref('stg_shop__clicks') }}
    union all
    select 'products', count(*) from {{ ref('stg_shop__products') }}
    union all
    select 'reviews', count(*) from {{ ref('stg_shop__reviews') }}
),

clean as (
    select 'orders' as entity, count(*) as clean_rows from {{ ref('fct_order_lines') }}
    union all
    select 'clicks', count(*) from {{ ref('fct_clicks') }}
    union all
    select 'products', count(*) from {{ ref('int_products__classified') }} where quarantine_reason is null
    union all
    select 'reviews', count(*) from {{ ref('fct_reviews') }}
),

quarantined as (
    select entity, count(*) as quarantined_rows
    from (
        select entity from {{ ref('quarantine_orders') }}
        union all
        select entity from {{ ref('quarantine_clicks') }}
        union all
        select entity from {{ ref('quarantine_products') }}
        union all
        select entity from {{ ref('quarantine_reviews') }}
    )
    group by all
),

final as (
    select
        staged.entity,
        {{ run_date() }} as run_date,
        staged.raw_rows,
        coalesce(clean.clean_rows, 0) as clean_rows,
        coalesce(quarantined.quarantined_rows, 0) as quarantined_rows,
        staged.raw_rows = coalesce(clean.clean_rows, 0) + coalesce(quarantined.quarantined_rows, 0) as is_balanced
    from staged
    left join clean using (entity)
    left join quarantined using (entity)
)

select * from final
