{#- One row per raw review delivered up to the run date, typed, with its row-level quarantine reason. -#}
with

source as (
    select
        *,
        struct_pack(review_id, product_id, user_id, rating, title, body, created_at) as raw_record
    from {{ source('shop', 'reviews') }}
    where _delivery_date <= {{ run_date() }}
),

typed as (
    select
        ---------- lineage
        {{ lineage_columns() }},
        ---------- ids
        {{ clean_text('source.review_id') }} as review_id,
        {{ clean_text('source.product_id') }} as product_id,
        {{ clean_text('source.user_id') }} as user_id,
        ---------- content
        try_cast({{ clean_text('source.rating') }} as integer) as rating,
        {{ clean_text('source.title') }} as title,
        {{ clean_text('source.body') }} as body,
        try_cast({{ clean_text('source.created_at') }} as timestamp) as created_at,
        ---------- parse failures
        {{ clean_text('source.rating') }} is not null
            and coalesce(try_cast({{ clean_text('source.rating') }} as integer) not between 1 and 5, true)
            as has_bad_rating,
        raw_record
    from source
),

classified as (
    select
        *,
        {{ first_failure([
            ("is_superseded", "superseded_delivery"),
            ("review_id is null", "missing_review_id"),
            ("product_id is null", "missing_product_id"),
            ("body is null", "missing_body"),
            ("has_bad_rating", "bad_rating"),
        ] + timestamp_checks('created_at', 'created_at') + [
            ("length(body) > " ~ var("max_text_length") ~ " or length(title) > " ~ var("max_text_length"),
                "text_too_long"),
        ]) }} as row_quarantine_reason
    from typed
),

final as (
    select
        load_id,
        source_row_number,
        source_file,
        _delivery_date as delivery_date,
        review_id,
        product_id,
        user_id,
        rating,
        title,
        body,
        created_at,
        row_quarantine_reason,
        raw_record
    from classified
)

select * from final
