-- The number of a project's next cut of a dataset (v0001, v0002, ...), under dataset_lock.
SELECT count(*) + 1 AS next
FROM dataset_inventory
WHERE project_id = %(project_id)s AND dataset = %(dataset)s
