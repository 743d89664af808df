-- Content known by md5 only (Drive files without sha256Checksum): one round trip for a batch.
SELECT d.sha256, d.md5, d.size_bytes, d.first_bucket, d.first_key
FROM raw.data_files d
WHERE d.md5 = ANY(%(md5)s::text[])
