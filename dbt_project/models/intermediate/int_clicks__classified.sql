{#- Every click event up to the run date with its final quarantine reason (NULL = clean).
    Adds unknown products, service items and duplicates: a repeated event_id (or, without one, a repeated
    identical event) is duplicate_event; the first delivered copy is kept.

    Incremental: a night re-classifies only the rows whose reason tonight's inputs can change, and every row that
    competes with them for "first delivered copy" (same duplicate key), then replaces those rows by
    (load_id, source_row_number). A row's reason can change when
      - its load is new (not classified yet),
      - its delivery day got a new version tonight (superseded_delivery),
      - its product's catalogue status flipped (unknown_product <-> clean): in_catalogue records the status used.
    Everything else a reason depends on (the dbt project, its seeds and vars, earlier run dates) triggers a full
    refresh instead: shopflow.transform.build_warehouse decides. classified_on is the run date that last
    (re)classified the row, so fct_clicks can apply the same rows.
    Staging parses every delivered row (most of a night's cost when it parsed all history), so an incremental night
    stages only whole delivery days: the days of its new loads, and the days of the earlier rows whose duplicate key
    it re-checks (tonight's keys and those of clicks on flipped products), found in the rows classified before, whose
    values are parsed already. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['load_id', 'source_row_number'],
    on_schema_change='fail',
) }}
{%- set duplicate_key -%}
    coalesce('id:' || event_id, 'event:' || concat_ws('|', session_id, user_id, product_id, event_type, occurred_at))
{%- endset %}
with

staged as not materialized (  -- inlined where read, so each reader's filter on delivery_date reaches the scan
    select * exclude (raw_record), {{ duplicate_key }} as duplicate_key from {{ ref('stg_shop__clicks') }}
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

{% if is_incremental() %}

new_delivery_days as (  -- days with a load not classified yet, which supersedes the day's earlier loads
    select distinct delivery_date
    from {{ ref('stg_shop__clicks') }}
    where load_id not in (select load_id from {{ this }})
),

flipped_products as (
    select classified_before.product_id
    from (select distinct product_id, in_catalogue from {{ this }} where product_id is not null) as classified_before
    left join catalogue on classified_before.product_id = catalogue.product_id
    where classified_before.in_catalogue != (catalogue.product_id is not null)
),

touched_keys as (  -- every row of a new delivery day, and the clicks on flipped products
    select duplicate_key from staged where delivery_date in (select delivery_date from new_delivery_days)
    union
    select {{ duplicate_key }} from {{ this }} where product_id in (select product_id from flipped_products)
),

days_to_stage as (  -- the rows classified before are parsed already: their keys cost no staging
    select delivery_date from new_delivery_days
    union
    select delivery_date from {{ this }} where {{ duplicate_key }} in (select duplicate_key from touched_keys)
),

{% endif %}

clicks as materialized (  -- read by service_product_ids and checked: staged once
    select *
    from staged
    {% if is_incremental() %}
    where delivery_date in (select delivery_date from days_to_stage)
        and duplicate_key in (select duplicate_key from touched_keys)
    {% endif %}
),

service_product_ids as (
    {{ service_product_ids('clicks', 'service_items') }}
),

checked as (
    select
        clicks.*,
        catalogue.product_id is not null as in_catalogue,
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
            partition by relational_quarantine_reason is null, duplicate_key
            order by delivery_date, load_id, source_row_number
        ) as copy_number
    from checked
),

decided as materialized (  -- read twice by attach_raw_record: computed once
    select
        * exclude (duplicate_key, row_quarantine_reason, relational_quarantine_reason, copy_number),
        coalesce(
            relational_quarantine_reason,
            case when copy_number > 1 then 'duplicate_event' end
        ) as quarantine_reason,
        {{ run_date() }} as classified_on
    from ranked
),

final as (
    {{ attach_raw_record('decided', 'raw_records') }}
)

select * from final
