-- Claim content in the uniqueness inventory. ON CONFLICT makes concurrent claims safe: of two
-- writers claiming the same sha256 at once, exactly one gets is_new = true.
WITH input AS (
    SELECT * FROM unnest(%(sha256)s::text[], %(md5)s::text[], %(size_bytes)s::bigint[], %(keys)s::text[])
        AS t(sha256, md5, size_bytes, first_key)
), inserted AS (
    INSERT INTO raw.data_files (sha256, md5, size_bytes, first_bucket, first_key, first_run_id)
    SELECT DISTINCT ON (sha256) sha256, md5, size_bytes, %(bucket)s, first_key, %(run_id)s
    FROM input ORDER BY sha256, first_key
    ON CONFLICT (sha256) DO NOTHING
    RETURNING sha256, first_bucket, first_key
)
SELECT i.sha256,
       (ins.sha256 IS NOT NULL) AS is_new,
       coalesce(ins.first_bucket, d.first_bucket) AS first_bucket,
       coalesce(ins.first_key, d.first_key) AS first_key
FROM (SELECT DISTINCT sha256 FROM input) AS i
LEFT JOIN inserted AS ins ON ins.sha256 = i.sha256
LEFT JOIN raw.data_files AS d ON d.sha256 = i.sha256
