{#- The target table: the curated columns (names and types from the Parquet schema), then the
    lineage columns that tie every row to its project, curated version and file sha256. -#}
CREATE TABLE IF NOT EXISTS {{ target }} (
{% for column in columns %}
    {{ column.name }} {{ column.type }},
{% endfor %}
    "_TRILHA_PROJECT" VARCHAR NOT NULL,
    "_TRILHA_VERSION" VARCHAR NOT NULL,
    "_TRILHA_SOURCE_SHA256" VARCHAR(64) NOT NULL,
    "_TRILHA_LOADED_AT" TIMESTAMP_TZ NOT NULL
)
COMMENT = %(comment)s
