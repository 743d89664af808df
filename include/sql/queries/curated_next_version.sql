-- Serialise version numbering per (project, dataset), then read the next number.
SELECT pg_advisory_xact_lock(%(project_id)s::int, hashtext(%(dataset)s)) AS locked,
       (SELECT coalesce(max(substring(version FROM 2)::int), 0) + 1
          FROM curated_inventory WHERE project_id = %(project_id)s AND dataset = %(dataset)s) AS next
