{#- One row per raw click event delivered up to the run date, typed, with its row-level quarantine reason. -#}
with

source as (
    select
        *,
        struct_pack(event_id, session_id, user_id, product_id, event_type, occurred_at) as raw_record
    from {{ source('shop', 'clicks') }}
    where _delivery_date <= {{ run_date() }}
),

typed as (
    select
        ---------- lineage
        {{ lineage_columns() }},
        ---------- ids
        {{ clean_text('source.event_id') }} as event_id,
        {{ clean_text('source.session_id') }} as session_id,
        {{ clean_text('source.user_id') }} as user_id,
        {{ clean_text('source.product_id') }} as product_id,
        ---------- event
        lower({{ clean_text('source.event_type') }}) as event_type,
        try_cast({{ clean_text('source.occurred_at') }} as timestamp) as occurred_at,
        raw_record
    from source
),

classified as (
    select
        *,
        {{ first_failure([
            ("is_superseded", "superseded_delivery"),
            ("user_id is null", "missing_user_id"),
            ("product_id is null", "missing_product_id"),
            ("event_type is null or event_type not in ('view', 'add_to_cart', 'remove_from_cart', 'purchase')",
                "bad_event_type"),
        ] + timestamp_checks('occurred_at', 'occurred_at')) }} as row_quarantine_reason
    from typed
),

final as (
    select
        load_id,
        source_row_number,
        source_file,
        _delivery_date as delivery_date,
        event_id,
        session_id,
        user_id,
        product_id,
        event_type,
        occurred_at,
        row_quarantine_reason,
        raw_record
    from classified
)

select * from final
