-- Every object the Iceberg versions of a project's dataset claim (inside record_curated's
-- transaction): what the next run does not claim again, and what tells leftovers of a run that died.
SELECT o.value ->> 'key' AS key
FROM curated_inventory c CROSS JOIN LATERAL jsonb_array_elements(c.objects) AS o(value)
WHERE c.project_id = %(project_id)s AND c.dataset = %(dataset)s
