{#- A column that a newer curated version brought (an INMET extra column, a new generic column). -#}
ALTER TABLE {{ target }} ADD COLUMN IF NOT EXISTS {{ column.name }} {{ column.type }}
