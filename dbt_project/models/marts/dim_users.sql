{#- Users seen in clean orders, clicks or reviews up to the run date. One row per user. -#}
with

order_lines as (
    select * from {{ ref('fct_order_lines') }}
),

clicks as (
    select * from {{ ref('fct_clicks') }}
),

reviews as (
    select * from {{ ref('fct_reviews') }}
),

order_activity as (
    select
        user_id,
        count(distinct order_id) filter (where quantity > 0) as n_orders,
        count(*) as n_order_lines,
        sum(line_amount) as net_revenue,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at
    from order_lines
    group by all
),

country_counts as (
    select user_id, country, count(*) as n_lines
    from order_lines
    where country is not null
    group by all
),

home_country as (
    -- the country a user orders from most often (ties: alphabetical), so the answer is stable
    select user_id, country
    from country_counts
    qualify row_number() over (partition by user_id order by n_lines desc, country) = 1
),

click_activity as (
    select
        user_id,
        count(*) as n_click_events,
        count(distinct session_id) as n_sessions,
        min(occurred_at) as first_click_at,
        max(occurred_at) as last_click_at
    from clicks
    group by all
),

review_activity as (
    select user_id, count(*) as n_reviews, min(created_at) as first_review_at, max(created_at) as last_review_at
    from reviews
    where user_id is not null
    group by all
),

users as (
    select user_id from order_activity
    union
    select user_id from click_activity
    union
    select user_id from review_activity
),

final as (
    select
        users.user_id,
        home_country.country,
        cast(coalesce(order_activity.n_orders, 0) as integer) as n_orders,
        cast(coalesce(order_activity.n_order_lines, 0) as integer) as n_order_lines,
        cast(coalesce(order_activity.net_revenue, 0) as decimal(18, 3)) as net_revenue,
        cast(coalesce(click_activity.n_click_events, 0) as integer) as n_click_events,
        cast(coalesce(click_activity.n_sessions, 0) as integer) as n_sessions,
        cast(coalesce(review_activity.n_reviews, 0) as integer) as n_reviews,
        least(first_order_at, first_click_at, first_review_at) as first_seen_at,
        greatest(last_order_at, last_click_at, last_review_at) as last_seen_at
    from users
    left join order_activity using (user_id)
    left join home_country using (user_id)
    left join click_activity using (user_id)
    left join review_activity using (user_id)
)

select * from final
