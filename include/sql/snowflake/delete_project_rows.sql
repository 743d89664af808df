{#- Full replace, step 1 (same transaction as step 2): a table without a natural key (generic
    "data") is the whole version, so the project's previous rows go. -#}
DELETE FROM {{ target }} WHERE "_TRILHA_PROJECT" = %(project)s
