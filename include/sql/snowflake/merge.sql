{#- Upsert a keyed curated table (hourly, daily, stations). The project is part of the key, so two
    projects whose table names coincide can never overwrite each other's rows. Curated tables are
    unique on their key, so each staging row inserts or updates exactly one target row. -#}
MERGE INTO {{ target }} AS t
USING {{ staging }} AS s
    ON t."_TRILHA_PROJECT" = %(project)s
{% for key in keys %}
    AND t.{{ key }} = s.{{ key }}
{% endfor %}
WHEN MATCHED THEN UPDATE SET
{% for column in updates %}
    t.{{ column }} = s.{{ column }},
{% endfor %}
    t."_TRILHA_VERSION" = %(version)s,
    t."_TRILHA_SOURCE_SHA256" = %(sha256)s,
    t."_TRILHA_LOADED_AT" = CURRENT_TIMESTAMP()
WHEN NOT MATCHED THEN INSERT (
{% for column in columns %}
    {{ column }},
{% endfor %}
    "_TRILHA_PROJECT",
    "_TRILHA_VERSION",
    "_TRILHA_SOURCE_SHA256",
    "_TRILHA_LOADED_AT"
) VALUES (
{% for column in columns %}
    s.{{ column }},
{% endfor %}
    %(project)s,
    %(version)s,
    %(sha256)s,
    CURRENT_TIMESTAMP()
)
