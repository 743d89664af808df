-- Which of N checksums are already in the uniqueness inventory (one round trip for a whole batch).
SELECT d.sha256, d.first_bucket, d.first_key
FROM raw.data_files d
WHERE d.sha256 = ANY(%(sha256)s::text[])
