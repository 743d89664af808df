-- Serialise two runs making the same cut (project, parameters fingerprint); released at COMMIT/ROLLBACK.
SELECT pg_advisory_xact_lock(%(project_id)s::int, hashtext(%(fingerprint)s)) AS locked
