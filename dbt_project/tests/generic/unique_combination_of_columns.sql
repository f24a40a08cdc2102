{#- Fails for every combination of `columns` that occurs more than once (a multi-column key test, like
    dbt_utils' unique_combination_of_columns, without needing `dbt deps` offline). -#}
{% test unique_combination_of_columns(model, columns) %}
select {{ columns | join(', ') }}, count(*) as occurrences
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
