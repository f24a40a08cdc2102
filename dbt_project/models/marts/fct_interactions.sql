{#- Implicit feedback for the recommender. One row per user × product that interacted up to the run date.
    weight = view·views + add_to_cart·max(carts − removals, 0) + purchase·ln(1 + max(units bought − units returned, 0)),
    with the weights from the interaction_weights var; returns and cancellations are netted.
    Incremental: the pre-hook deletes the pairs whose clicks or order lines tonight's build can have changed
    (keys_to_recount), and they are counted again from the facts; a pair with nothing clean left stays deleted. A full
    refresh counts every pair. -#}
-- depends_on: {{ ref('int_clicks__classified') }}
-- depends_on: {{ ref('int_orders__classified') }}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{% if is_incremental() %}
        delete from {{ this }} where (user_id, product_id) in ({{ keys_to_recount(['user_id', 'product_id']) }})
    {% endif %}",
) }}
{%- set weights = var('interaction_weights') %}
with

{% if is_incremental() %}

recounted_pairs as (
    {{ keys_to_recount(['user_id', 'product_id']) }}
),

clicks as (
    select * from {{ ref('fct_clicks') }} semi join recounted_pairs using (user_id, product_id)
),

order_lines as (
    select * from {{ ref('fct_order_lines') }} semi join recounted_pairs using (user_id, product_id)
),

{% else %}

clicks as (
    select * from {{ ref('fct_clicks') }}
),

order_lines as (
    select * from {{ ref('fct_order_lines') }}
),

{% endif %}

click_counts as (
    select
        user_id,
        product_id,
        count(*) filter (where event_type = 'view') as n_views,
        count(*) filter (where event_type = 'add_to_cart') as n_add_to_cart,
        count(*) filter (where event_type = 'remove_from_cart') as n_remove_from_cart,
        count(*) filter (where event_type = 'purchase') as n_purchase_events,
        min(occurred_at) as first_click_at,
        max(occurred_at) as last_click_at
    from clicks
    group by all
),

order_counts as (
    select
        user_id,
        product_id,
        count(distinct order_id) filter (where quantity > 0) as n_orders,
        coalesce(sum(quantity) filter (where quantity > 0), 0) as units_bought,
        coalesce(-sum(quantity) filter (where quantity < 0), 0) as units_returned,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at
    from order_lines
    group by all
),

combined as (
    select
        coalesce(click_counts.user_id, order_counts.user_id) as user_id,
        coalesce(click_counts.product_id, order_counts.product_id) as product_id,
        coalesce(n_views, 0) as n_views,
        coalesce(n_add_to_cart, 0) as n_add_to_cart,
        coalesce(n_remove_from_cart, 0) as n_remove_from_cart,
        coalesce(n_purchase_events, 0) as n_purchase_events,
        coalesce(n_orders, 0) as n_orders,
        coalesce(units_bought, 0) as units_bought,
        coalesce(units_returned, 0) as units_returned,
        least(first_click_at, first_order_at) as first_interaction_at,
        greatest(last_click_at, last_order_at) as last_interaction_at
    from click_counts
    full outer join order_counts
        on click_counts.user_id = order_counts.user_id and click_counts.product_id = order_counts.product_id
),

final as (
    select
        user_id,
        product_id,
        cast(n_views as integer) as n_views,
        cast(n_add_to_cart as integer) as n_add_to_cart,
        cast(n_remove_from_cart as integer) as n_remove_from_cart,
        cast(n_purchase_events as integer) as n_purchase_events,
        cast(n_orders as integer) as n_orders,
        cast(units_bought as bigint) as units_bought,
        cast(units_returned as bigint) as units_returned,
        cast(units_bought - units_returned as bigint) as net_units,
        cast(
            {{ weights['view'] }} * n_views
            + {{ weights['add_to_cart'] }} * greatest(n_add_to_cart - n_remove_from_cart, 0)
            + {{ weights['purchase'] }} * ln(1 + greatest(units_bought - units_returned, 0))
            as double
        ) as weight,
        first_interaction_at,
        last_interaction_at
    from combined
)

select * from final
