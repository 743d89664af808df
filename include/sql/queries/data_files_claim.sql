-- Claim content in the uniqueness inventory. Of two writers claiming the same sha256 at once, exactly
-- one gets is_new = true. The conflict arm is DO UPDATE (a no-op assignment), not DO NOTHING: it waits
-- for a concurrent claimer and then RETURNs the row that won, which DO NOTHING cannot do (the row
-- committed after this statement's snapshot is invisible to a join), so the duplicate's reason always
-- names the first key. xmax = 0 only on a row this statement inserted. Input is sorted by sha256, so
-- two batches lock shared rows in the same order and cannot deadlock.
WITH input AS (
    SELECT * FROM unnest(%(sha256)s::text[], %(md5)s::text[], %(size_bytes)s::bigint[], %(keys)s::text[])
        AS t(sha256, md5, size_bytes, first_key)
)
INSERT INTO raw.data_files AS d (sha256, md5, size_bytes, first_bucket, first_key, first_run_id)
SELECT DISTINCT ON (sha256) sha256, md5, size_bytes, %(bucket)s, first_key, %(run_id)s
FROM input ORDER BY sha256, first_key
ON CONFLICT (sha256) DO UPDATE SET sha256 = d.sha256
RETURNING d.sha256, (d.xmax = 0) AS is_new, d.first_bucket, d.first_key
