{#- Which columns the target already has, so a newer version's extra columns can be added. -#}
DESCRIBE TABLE {{ target }}
