-- Serialise project creation (rare, and short). ON CONFLICT (name) covers a concurrent insert of the
-- same name only; without this lock the loser of two simultaneous creations of one project fails on
-- the prefix's UNIQUE index instead of reading the winner's row. Released at COMMIT/ROLLBACK.
SELECT pg_advisory_xact_lock(hashtext('trilha.projects_registry')) AS locked
