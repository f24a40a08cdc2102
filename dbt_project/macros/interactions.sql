{#- The keys of the clean rows tonight's build can have changed, for marts that aggregate fct_clicks and
    fct_order_lines incrementally (fct_interactions reads them twice: its pre-hook deletes them, its body counts them
    again); keys are columns of both classified models, e.g. ['user_id', 'product_id']. They come from
      - clicks: the rows int_clicks__classified re-classified tonight (only they can enter or leave fct_clicks);
      - orders: every delivered order line, clean or not. The order chain is rebuilt each night, so which of its
        lines changed is not known; int_orders__classified holds every line ever delivered up to the run date
        (raw is immutable), so these keys also cover the lines that were clean last night.
    A row's keys never change: they are columns of the delivered row. -#}
{% macro keys_to_recount(keys) -%}
    select {{ keys | join(', ') }}
    from {{ ref('int_clicks__classified') }}
    where classified_on = {{ run_date() }}
    union
    select {{ keys | join(', ') }}
    from {{ ref('int_orders__classified') }}
{%- endmacro %}
