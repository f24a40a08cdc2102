{#- Quarantined products rows with their reason and delivered values. One row per rejected raw row. -#}
{{ quarantine_rows(ref('int_products__classified'), 'products') }}
