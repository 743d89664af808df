-- Register reception objects (a record that outlives the object). Re-registering is a no-op.
INSERT INTO reception_audit (
    bucket, object_key, file_name, etag, size_bytes, uploaded_at, sha256, md5, source_kind,
    source_ref, source_revision, status, duplicate_of, reason, run_id
)
SELECT %(bucket)s, t.* FROM unnest(
    %(keys)s::text[], %(file_names)s::text[], %(etags)s::text[], %(sizes)s::bigint[],
    %(uploaded_at)s::timestamptz[], %(sha256)s::text[], %(md5)s::text[], %(source_kind)s::text[],
    %(source_ref)s::text[], %(source_revision)s::text[], %(status)s::text[], %(duplicate_of)s::text[],
    %(reason)s::text[], %(run_ids)s::text[]
) AS t
ON CONFLICT (bucket, object_key, etag) WHERE deleted_at IS NULL DO NOTHING
RETURNING id, object_key, status
