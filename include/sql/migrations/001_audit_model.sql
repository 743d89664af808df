-- 001: the audit data model (docs/data-model.md).
-- Seed names are kept: raw.data_files, meta.audit_log, meta.version_history, projects_registry,
-- reception_audit, storage_audit. Every row that describes an object carries its sha256, and the
-- constraints below are what keep the invariants true when two runs of a DAG overlap.

CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS meta;

-- Content-unique inventory of every byte sequence that ever entered reception.
CREATE TABLE raw.data_files (
    id              BIGSERIAL PRIMARY KEY,
    sha256          CHAR(64)    NOT NULL UNIQUE CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    md5             CHAR(32)    NOT NULL CHECK (md5 ~ '^[0-9a-f]{32}$'),
    size_bytes      BIGINT      NOT NULL CHECK (size_bytes >= 0),
    first_bucket    TEXT        NOT NULL,
    first_key       TEXT        NOT NULL,
    first_run_id    TEXT,
    first_seen_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE projects_registry (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT        NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
    prefix      TEXT        NOT NULL UNIQUE CHECK (prefix ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_run_id TEXT
);

-- One row per reception object version (bucket, key, ETag): it outlives the object itself.
CREATE TABLE reception_audit (
    id              BIGSERIAL PRIMARY KEY,
    bucket          TEXT        NOT NULL,
    object_key      TEXT        NOT NULL,
    file_name       TEXT        NOT NULL,
    etag            TEXT        NOT NULL,
    size_bytes      BIGINT      NOT NULL CHECK (size_bytes >= 0),
    uploaded_at     TIMESTAMPTZ,
    sha256          CHAR(64)    CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    md5             CHAR(32),
    source_kind     TEXT        NOT NULL DEFAULT 'upload' CHECK (source_kind IN ('drive', 'local', 'upload')),
    source_ref      TEXT,
    source_revision TEXT,
    status          TEXT        NOT NULL CHECK (status IN ('new', 'duplicate', 'rejected')),
    duplicate_of    CHAR(64),
    reason          TEXT,
    run_id          TEXT,
    registered_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at      TIMESTAMPTZ,
    -- A row that is not rejected always names its content.
    CHECK (status = 'rejected' OR sha256 IS NOT NULL),
    CHECK (status <> 'rejected' OR reason IS NOT NULL),
    CHECK (status <> 'duplicate' OR duplicate_of IS NOT NULL)
);
CREATE INDEX reception_audit_sha256_idx ON reception_audit (sha256);
-- One live row per object version. Partial, so the same bytes uploaded again under the same key
-- after cleanup deleted them are registered (and later cleaned) again, with their own record.
CREATE UNIQUE INDEX reception_audit_live_object_idx ON reception_audit (bucket, object_key, etag)
    WHERE deleted_at IS NULL;
CREATE INDEX reception_audit_key_idx ON reception_audit (bucket, object_key);

CREATE TABLE storage_audit (
    id                  BIGSERIAL PRIMARY KEY,
    project_id          BIGINT      NOT NULL REFERENCES projects_registry (id),
    project_prefix      TEXT        NOT NULL,
    project_name        TEXT        NOT NULL,
    reception_audit_id  BIGINT      REFERENCES reception_audit (id),
    source_bucket       TEXT        NOT NULL,
    source_key          TEXT        NOT NULL,
    dest_bucket         TEXT        NOT NULL,
    dest_key            TEXT        NOT NULL,
    logical_name        TEXT        NOT NULL,
    version             INTEGER     NOT NULL DEFAULT 1 CHECK (version >= 1),
    size_bytes          BIGINT      NOT NULL CHECK (size_bytes >= 0),
    sha256              CHAR(64)    NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    md5                 CHAR(32)    NOT NULL,
    moved_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    run_id              TEXT,
    UNIQUE (dest_bucket, dest_key),
    -- Content is stored once per project: this is the uniqueness the double check relies on.
    UNIQUE (project_id, sha256)
);
CREATE INDEX storage_audit_sha256_idx ON storage_audit (sha256);

-- Same logical name, different content: a new version, never an overwrite.
CREATE TABLE meta.version_history (
    id                BIGSERIAL PRIMARY KEY,
    project_id        BIGINT      NOT NULL REFERENCES projects_registry (id),
    logical_name      TEXT        NOT NULL,
    version           INTEGER     NOT NULL CHECK (version >= 1),
    sha256            CHAR(64)    NOT NULL,
    previous_sha256   CHAR(64),
    storage_audit_id  BIGINT      REFERENCES storage_audit (id),
    dest_key          TEXT        NOT NULL,
    run_id            TEXT,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (project_id, logical_name, version),
    UNIQUE (project_id, logical_name, sha256)
);

-- One row per task run (try), failures included.
CREATE TABLE meta.audit_log (
    id            BIGSERIAL PRIMARY KEY,
    dag_id        TEXT        NOT NULL,
    run_id        TEXT        NOT NULL,
    task_id       TEXT        NOT NULL,
    map_index     INTEGER     NOT NULL DEFAULT -1,
    try_number    INTEGER     NOT NULL DEFAULT 1,
    status        TEXT        NOT NULL CHECK (status IN ('running', 'success', 'failed')),
    counters      JSONB       NOT NULL DEFAULT '{}'::jsonb,
    -- Per-item rejections and failures with their reasons (bounded; the run log has the same).
    problems      JSONB       NOT NULL DEFAULT '[]'::jsonb,
    error         TEXT,
    started_at    TIMESTAMPTZ NOT NULL,
    ended_at      TIMESTAMPTZ,
    duration_s    DOUBLE PRECISION,
    UNIQUE (dag_id, run_id, task_id, map_index, try_number)
);

-- Every reception deletion (and every dry-run decision) made by reception_cleanup.
CREATE TABLE meta.cleanup_log (
    id                  BIGSERIAL PRIMARY KEY,
    reception_audit_id  BIGINT      REFERENCES reception_audit (id),
    bucket              TEXT        NOT NULL,
    object_key          TEXT        NOT NULL,
    sha256              CHAR(64),
    size_bytes          BIGINT,
    etag                TEXT,
    storage_audit_id    BIGINT      REFERENCES storage_audit (id),
    action              TEXT        NOT NULL CHECK (action IN ('deleted', 'would_delete', 'kept')),
    reason              TEXT        NOT NULL,
    dry_run             BOOLEAN     NOT NULL,
    run_id              TEXT,
    decided_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX cleanup_log_one_delete_idx ON meta.cleanup_log (reception_audit_id) WHERE action = 'deleted';

-- Staging inventory: one row per (source content, parser version).
CREATE TABLE staging_inventory (
    id                BIGSERIAL PRIMARY KEY,
    project_id        BIGINT      NOT NULL REFERENCES projects_registry (id),
    storage_audit_id  BIGINT      REFERENCES storage_audit (id),
    source_bucket     TEXT        NOT NULL,
    source_key        TEXT        NOT NULL,
    source_sha256     CHAR(64)    NOT NULL,
    code_version      TEXT        NOT NULL,
    dataset           TEXT,
    layout            TEXT,
    status            TEXT        NOT NULL CHECK (status IN ('staged', 'rejected')),
    reason            TEXT,
    rows_in           BIGINT      NOT NULL DEFAULT 0,
    rows_ok           BIGINT      NOT NULL DEFAULT 0,
    rows_rejected     BIGINT      NOT NULL DEFAULT 0,
    schema_json       JSONB,
    output_bucket     TEXT,
    output_key        TEXT,
    output_sha256     CHAR(64),
    quarantine_key    TEXT,
    quarantine_sha256 CHAR(64),
    run_id            TEXT,
    staged_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (project_id, source_sha256, code_version),
    CHECK (rows_in = rows_ok + rows_rejected),
    CHECK (status <> 'staged' OR (output_key IS NOT NULL AND output_sha256 IS NOT NULL))
);

CREATE TABLE curated_inventory (
    id                 BIGSERIAL PRIMARY KEY,
    project_id         BIGINT      NOT NULL REFERENCES projects_registry (id),
    dataset            TEXT        NOT NULL,
    version            TEXT        NOT NULL,
    inputs_fingerprint CHAR(64)    NOT NULL,
    inputs_count       INTEGER     NOT NULL,
    rows               BIGINT      NOT NULL,
    bucket             TEXT        NOT NULL,
    prefix             TEXT        NOT NULL,
    inputs             JSONB       NOT NULL,
    files              JSONB       NOT NULL,
    manifest_key       TEXT        NOT NULL,
    manifest_sha256    CHAR(64)    NOT NULL,
    snowflake_loaded_at TIMESTAMPTZ,
    run_id             TEXT,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (project_id, dataset, version),
    UNIQUE (project_id, dataset, inputs_fingerprint)
);

CREATE TABLE dataset_inventory (
    id                  BIGSERIAL PRIMARY KEY,
    project_id          BIGINT      NOT NULL REFERENCES projects_registry (id),
    dataset             TEXT        NOT NULL,
    version             TEXT        NOT NULL,
    curated_id          BIGINT      NOT NULL REFERENCES curated_inventory (id),
    strategy            TEXT        NOT NULL CHECK (strategy IN ('hash', 'temporal')),
    params              JSONB       NOT NULL,
    params_fingerprint  CHAR(64)    NOT NULL,
    rows                JSONB       NOT NULL,
    bucket              TEXT        NOT NULL,
    prefix              TEXT        NOT NULL,
    files               JSONB       NOT NULL,
    manifest_key        TEXT        NOT NULL,
    manifest_sha256     CHAR(64)    NOT NULL,
    drive_folder_id     TEXT,
    run_id              TEXT,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (project_id, dataset, version),
    UNIQUE (curated_id, params_fingerprint)
);
