{#- Temporary: private to this session, so concurrent loads cannot meet, and gone with the session
    if the worker dies half-way. Like a transient table it has no Fail-safe cost. -#}
CREATE OR REPLACE TEMPORARY TABLE {{ staging }} (
{% for column in columns %}
    {{ column.name }} {{ column.type }}{% if not loop.last %},{% endif +%}
{% endfor %}
)
