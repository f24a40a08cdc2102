{#- Nothing is lost: for every entity, raw rows in scope = clean rows + quarantined rows. -#}
select *
from {{ ref('row_accounting') }}
where not is_balanced
