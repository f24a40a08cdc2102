{#- Shop KPIs per calendar day. One row per day with clean orders or clicks.
    conversion_rate = visitors who also ordered that day / visitors; NULL on days without click data. -#}
with

order_lines as (
    select * from {{ ref('fct_order_lines') }}
),

clicks as (
    select * from {{ ref('fct_clicks') }}
),

orders_per_day as (
    select
        order_date as kpi_date,
        count(distinct order_id) filter (where quantity > 0) as orders,
        count(*) filter (where quantity > 0) as order_lines,
        coalesce(sum(quantity) filter (where quantity > 0), 0) as units_sold,
        coalesce(sum(line_amount) filter (where quantity > 0), 0) as gross_revenue,
        coalesce(-sum(line_amount) filter (where quantity < 0), 0) as returns_amount,
        count(distinct user_id) filter (where quantity > 0) as buyers
    from order_lines
    group by all
),

visitors_per_day as (
    select event_date as kpi_date, count(distinct user_id) as visitors
    from clicks
    group by all
),

active_users_per_day as (
    select kpi_date, count(distinct user_id) as active_users
    from (
        select order_date as kpi_date, user_id from order_lines
        union
        select event_date as kpi_date, user_id from clicks
    )
    group by all
),

converted_visitors_per_day as (
    select clicks.event_date as kpi_date, count(distinct clicks.user_id) as converted_visitors
    from clicks
    inner join order_lines
        on clicks.user_id = order_lines.user_id
        and clicks.event_date = order_lines.order_date
        and order_lines.quantity > 0
    group by all
),

final as (
    select
        active_users_per_day.kpi_date,
        cast(coalesce(orders, 0) as integer) as orders,
        cast(coalesce(order_lines, 0) as integer) as order_lines,
        cast(coalesce(units_sold, 0) as bigint) as units_sold,
        cast(coalesce(gross_revenue, 0) as decimal(18, 3)) as gross_revenue,
        cast(coalesce(returns_amount, 0) as decimal(18, 3)) as returns_amount,
        cast(coalesce(gross_revenue, 0) - coalesce(returns_amount, 0) as decimal(18, 3)) as net_revenue,
        cast(gross_revenue / nullif(orders, 0) as decimal(18, 3)) as average_order_value,
        cast(active_users as integer) as active_users,
        cast(coalesce(buyers, 0) as integer) as buyers,
        cast(visitors as integer) as visitors,
        cast(coalesce(converted_visitors, 0) / nullif(visitors, 0) as double) as conversion_rate
    from active_users_per_day
    left join orders_per_day using (kpi_date)
    left join visitors_per_day using (kpi_date)
    left join converted_visitors_per_day using (kpi_date)
)

select * from final
