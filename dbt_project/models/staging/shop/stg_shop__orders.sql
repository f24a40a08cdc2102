{#- One row per raw order line delivered up to the run date, typed, with its row-level quarantine reason. -#}
with

source as (
    select
        *,
        struct_pack(order_id, line_no, user_id, product_id, quantity, unit_price, ordered_at, currency, status, country)
            as raw_record
    from {{ source('shop', 'orders') }}
    where _delivery_date <= {{ run_date() }}
),

typed as (
    select
        ---------- lineage
        {{ lineage_columns() }},
        ---------- ids
        {{ clean_text('source.order_id') }} as order_id,
        try_cast({{ clean_text('source.line_no') }} as integer) as line_no,
        {{ clean_text('source.user_id') }} as user_id,
        {{ clean_text('source.product_id') }} as product_id,
        ---------- amounts
        try_cast({{ clean_text('source.quantity') }} as integer) as quantity,
        try_cast({{ clean_text('source.unit_price') }} as decimal(18, 3)) as unit_price,
        upper({{ clean_text('source.currency') }}) as currency,
        lower({{ clean_text('source.status') }}) as status,
        {{ clean_text('source.country') }} as country,
        ---------- timestamps
        try_cast({{ clean_text('source.ordered_at') }} as timestamp) as ordered_at,
        ---------- parse failures
        {{ is_unparsable('source.line_no', 'integer') }} as has_bad_line_no,
        {{ is_unparsable('source.quantity', 'integer') }} or {{ clean_text('source.quantity') }} is null as has_bad_quantity,
        {{ is_unparsable('source.unit_price', 'decimal(18, 3)') }} or {{ clean_text('source.unit_price') }} is null as has_bad_price,
        raw_record
    from source
),

classified as (
    select
        *,
        {{ first_failure([
            ("is_superseded", "superseded_delivery"),
            ("order_id is null", "missing_order_id"),
            ("product_id is null", "missing_product_id"),
            ("user_id is null", "missing_user_id"),
            ("has_bad_quantity", "bad_quantity"),
            ("has_bad_price", "bad_unit_price"),
            ("has_bad_line_no", "bad_line_no"),
            ("status is not null and status not in ('placed', 'cancelled', 'returned')", "bad_status"),
        ] + timestamp_checks('ordered_at', 'ordered_at') + [
            ("quantity = 0", "zero_quantity"),
            ("abs(quantity) > " ~ var("max_quantity"), "absurd_quantity"),
            ("unit_price <= 0", "non_positive_price"),
            ("unit_price > " ~ var("max_unit_price"), "absurd_price"),
        ]) }} as row_quarantine_reason
    from typed
),

final as (
    select
        load_id,
        source_row_number,
        source_file,
        _delivery_date as delivery_date,
        order_id,
        line_no,
        user_id,
        product_id,
        quantity,
        unit_price,
        coalesce(currency, 'UNKNOWN') as currency,
        coalesce(status, case when quantity < 0 then 'returned' else 'placed' end) as status,
        country,
        ordered_at,
        row_quarantine_reason,
        raw_record
    from classified
)

select * from final
