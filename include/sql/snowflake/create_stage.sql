{#- Named internal stage: files reach it over the Snowflake connection (PUT), so Snowflake needs no
    credentials for the lake and MinIO need not be reachable from Snowflake. -#}
CREATE STAGE IF NOT EXISTS {{ stage }}
    FILE_FORMAT = (TYPE = PARQUET)
    COMMENT = %(comment)s
