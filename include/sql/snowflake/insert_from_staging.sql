{#- Full replace, step 2: the version's rows, with their lineage. -#}
INSERT INTO {{ target }} (
{% for column in columns %}
    {{ column }},
{% endfor %}
    "_TRILHA_PROJECT",
    "_TRILHA_VERSION",
    "_TRILHA_SOURCE_SHA256",
    "_TRILHA_LOADED_AT"
)
SELECT
{% for column in columns %}
    s.{{ column }},
{% endfor %}
    %(project)s,
    %(version)s,
    %(sha256)s,
    CURRENT_TIMESTAMP()
FROM {{ staging }} AS s
