-- Serialise the cuts of one dataset of a project (the same cut made twice at once, and the numbering
-- of the dataset's versions); released at COMMIT/ROLLBACK.
SELECT pg_advisory_xact_lock(%(project_id)s::int, hashtext('dataset_split:' || %(dataset)s)) AS locked
