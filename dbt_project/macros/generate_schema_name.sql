{#- Layers get exactly the schema named in dbt_project.yml (raw, staging, intermediate, marts, quarantine,
    reference) instead of dbt's default "<target schema>_<custom schema>", so analysts see plain names. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
