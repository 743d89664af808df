{#- One staged file (bound) into the staging table, columns matched by name. Logical types keep
    timestamps and dates typed; binary columns stay binary. PURGE removes the staged copy once loaded. -#}
COPY INTO {{ staging }}
FROM {{ location }}
FILES = (%(file)s)
FILE_FORMAT = (TYPE = PARQUET USE_LOGICAL_TYPE = TRUE BINARY_AS_TEXT = FALSE)
MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE
ON_ERROR = ABORT_STATEMENT
PURGE = TRUE
