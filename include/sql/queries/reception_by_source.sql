-- Source files (Drive id or local path, at a revision) captured before.
SELECT DISTINCT r.source_ref, r.source_revision
FROM unnest(%(refs)s::text[], %(revisions)s::text[]) AS s(ref, revision)
JOIN reception_audit r
  ON r.source_kind = %(kind)s AND r.source_ref = s.ref AND r.source_revision = s.revision
