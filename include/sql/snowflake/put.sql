{#- Parquet is compressed inside, so no gzip on top; OVERWRITE makes a re-run of a version converge.
    The local file URL is a value (bound); the stage location is built from validated names. -#}
PUT %(local_file)s {{ location }}
    AUTO_COMPRESS = FALSE
    OVERWRITE = TRUE
