{#- Quarantined rows per entity and reason, with their share of the entity's raw rows.
    One row per entity × reason. -#}
with

accounting as (
    select * from {{ ref('row_accounting') }}
),

quarantined as (
    select entity, quarantine_reason from {{ ref('quarantine_orders') }}
    union all
    select entity, quarantine_reason from {{ ref('quarantine_clicks') }}
    union all
    select entity, quarantine_reason from {{ ref('quarantine_products') }}
    union all
    select entity, quarantine_reason from {{ ref('quarantine_reviews') }}
),

per_reason as (
    select entity, quarantine_reason, count(*) as quarantined_rows
    from quarantined
    group by all
),

final as (
    select
        per_reason.entity,
        per_reason.quarantine_reason,
        accounting.run_date,
        per_reason.quarantined_rows,
        cast(per_reason.quarantined_rows / accounting.raw_rows as double) as share_of_raw_rows
    from per_reason
    inner join accounting using (entity)
)

select * from final
