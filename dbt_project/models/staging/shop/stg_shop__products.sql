{#- One row per raw catalogue row delivered up to the run date, typed, with its row-level quarantine reason. -#}
with

source as (
    select
        *,
        struct_pack(product_id, title, category, brand, price, currency, attributes, description, updated_at)
            as raw_record
    from {{ source('shop', 'products') }}
    where _delivery_date <= {{ run_date() }}
),

typed as (
    select
        ---------- lineage
        {{ lineage_columns() }},
        ---------- ids
        {{ clean_text('source.product_id') }} as product_id,
        ---------- text
        {{ clean_text('source.title') }} as title,
        {{ clean_text('source.category') }} as category,
        {{ clean_text('source.brand') }} as brand,
        {{ clean_text('source.description') }} as description,
        ---------- price
        try_cast({{ clean_text('source.price') }} as decimal(18, 3)) as price,
        upper({{ clean_text('source.currency') }}) as currency,
        ---------- attributes: a JSON object of facts (units in the key or the value)
        {{ clean_text('source.attributes') }} as attributes,
        try_cast({{ clean_text('source.updated_at') }} as timestamp) as updated_at,
        ---------- parse failures
        {{ is_unparsable('source.price', 'decimal(18, 3)') }} as has_bad_price,
        {{ clean_text('source.updated_at') }} is not null
            and try_cast({{ clean_text('source.updated_at') }} as timestamp) is null as has_bad_updated_at,
        {{ clean_text('source.attributes') }} is not null
            and coalesce(json_type(try_cast({{ clean_text('source.attributes') }} as json)) <> 'OBJECT', true)
            as has_bad_attributes,
        raw_record
    from source
),

classified as (
    select
        *,
        {{ first_failure([
            ("is_superseded", "superseded_delivery"),
            ("product_id is null", "missing_product_id"),
            ("title is null", "missing_title"),
            ("has_bad_price", "bad_price"),
            ("has_bad_attributes", "bad_attributes"),
            ("has_bad_updated_at", "bad_timestamp"),
            ("price <= 0", "non_positive_price"),
            ("price > " ~ var("max_unit_price"), "absurd_price"),
            ("length(title) > " ~ var("max_text_length") ~ " or length(description) > " ~ var("max_text_length"),
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
        product_id,
        title,
        category,
        brand,
        description,
        price,
        coalesce(currency, 'UNKNOWN') as currency,
        attributes,
        updated_at,
        row_quarantine_reason,
        raw_record
    from classified
)

select * from final
