-- 006: curated versions as Apache Iceberg snapshots (issue 14).
--
-- The SQL catalog of pyiceberg lives in the audit store: its two tables are created here, in the
-- layout pyiceberg 0.12 defines (catalog schema "v1", with iceberg_type), so a catalog is never
-- created behind the migrations' back (Trilha opens it with init_catalog_tables=false).
CREATE TABLE iceberg_tables (
    catalog_name               VARCHAR(255)  NOT NULL,
    table_namespace            VARCHAR(255)  NOT NULL,
    table_name                 VARCHAR(255)  NOT NULL,
    metadata_location          VARCHAR(1000),
    previous_metadata_location VARCHAR(1000),
    iceberg_type               VARCHAR(5),
    PRIMARY KEY (catalog_name, table_namespace, table_name)
);

CREATE TABLE iceberg_namespace_properties (
    catalog_name   VARCHAR(255)  NOT NULL,
    namespace      VARCHAR(255)  NOT NULL,
    property_key   VARCHAR(255)  NOT NULL,
    property_value VARCHAR(1000) NOT NULL,
    PRIMARY KEY (catalog_name, namespace, property_key)
);

-- A curated version is either the v0001-style Parquet files of before (table_format 'parquet':
-- files + manifest, as recorded until now) or one snapshot of each of its Iceberg tables
-- (table_format 'iceberg'): "tables" maps each table name to its identifier, snapshot id,
-- metadata location, rows and the partitions the version rewrote. "objects" lists every object the
-- version's commits wrote in the curated bucket (key, bytes, etag): what reconcile expects there.
-- The row is the publication point: a version exists once this row does, after all its tables'
-- commits (see docs/architecture.md).
ALTER TABLE curated_inventory
    ADD COLUMN table_format TEXT  NOT NULL DEFAULT 'parquet' CHECK (table_format IN ('parquet', 'iceberg')),
    ADD COLUMN tables       JSONB,
    ADD COLUMN objects      JSONB NOT NULL DEFAULT '[]'::jsonb;
