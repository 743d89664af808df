-- 005: the reconcile DAG (issue 13). Its reports, one row per bucket per run, each naming the run's
-- JSON report object in the storage bucket; and task runs whose process is gone, marked 'abandoned'.

CREATE TABLE meta.reconcile_report (
    id              BIGSERIAL PRIMARY KEY,
    run_id          TEXT        NOT NULL,
    -- The project scope of the run: NULL when it checked every project.
    project_prefix  TEXT,
    bucket          TEXT        NOT NULL,
    -- The layers whose audit rows describe this bucket (reception, storage, staging, curated, datasets).
    layers          TEXT[]      NOT NULL,
    checked_at      TIMESTAMPTZ NOT NULL,
    grace_minutes   INTEGER     NOT NULL CHECK (grace_minutes >= 0),
    rehash          BOOLEAN     NOT NULL,
    -- Objects per status: match, missing_in_lake, missing_in_audit, differ, pending.
    counts          JSONB       NOT NULL,
    -- The first drift items (status, key, reason, fields, expected, found); the report object has all.
    drift           JSONB       NOT NULL DEFAULT '[]'::jsonb,
    drift_total     INTEGER     NOT NULL,
    report_bucket   TEXT        NOT NULL,
    report_key      TEXT        NOT NULL,
    report_sha256   CHAR(64)    NOT NULL CHECK (report_sha256 ~ '^[0-9a-f]{64}$'),
    report_md5      CHAR(32)    NOT NULL CHECK (report_md5 ~ '^[0-9a-f]{32}$'),
    report_bytes    BIGINT      NOT NULL CHECK (report_bytes > 0),
    recorded_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (report_key, bucket),
    -- Drift is what is neither a match nor pending.
    CHECK (drift_total = (counts ->> 'missing_in_lake')::int + (counts ->> 'missing_in_audit')::int
                         + (counts ->> 'differ')::int)
);
CREATE INDEX reconcile_report_latest_idx ON meta.reconcile_report (bucket, checked_at DESC);

-- Which process wrote a task run's row, so that reconcile can tell a run still in flight from one
-- whose process died without recording its end; and when reconcile marked it abandoned.
ALTER TABLE meta.audit_log ADD COLUMN hostname TEXT;
ALTER TABLE meta.audit_log ADD COLUMN pid INTEGER;
ALTER TABLE meta.audit_log ADD COLUMN abandoned_at TIMESTAMPTZ;
ALTER TABLE meta.audit_log DROP CONSTRAINT audit_log_status_check;
ALTER TABLE meta.audit_log
    ADD CONSTRAINT audit_log_status_check
    CHECK (status IN ('running', 'success', 'failed', 'skipped', 'abandoned'));
ALTER TABLE meta.audit_log
    ADD CONSTRAINT audit_log_abandoned_at CHECK (status <> 'abandoned' OR abandoned_at IS NOT NULL);
CREATE INDEX audit_log_running_idx ON meta.audit_log (started_at) WHERE status = 'running';
