{#- Quarantined clicks rows with their reason and delivered values. One row per rejected raw row. -#}
{{ quarantine_rows(ref('int_clicks__classified'), 'clicks') }}
