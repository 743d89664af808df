{#- Tags every statement of the load in QUERY_HISTORY with project, dataset and version (bound). -#}
ALTER SESSION SET QUERY_TAG = %(query_tag)s
