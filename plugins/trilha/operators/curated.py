"""The curated operator: each dataset's staged parts become a new curated version when its inputs changed.

It reads the staged parts once (their inventory rows through
:class:`~trilha.hooks.audit.AuditHook`, their bytes through :class:`~trilha.hooks.minio.MinioHook`,
each checked against its sha256), lets :mod:`trilha.domain.curate` build the tables and
:mod:`trilha.domain.manifest` the manifest and the record, and writes the version: its Parquet
files, then its manifest, then its inventory row, in one audit transaction that holds the
dataset's version lock. pandas/pyarrow are imported inside ``execute`` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from trilha import config
from trilha.assets import CURATED, STAGED
from trilha.domain import events, lineage, manifest
from trilha.domain.keys import join_key
from trilha.exceptions import IntegrityError, ObjectMissingError
from trilha.hooks import include
from trilha.operators.base import Counters, TrilhaBaseOperator, all_or_raise, parallel

if TYPE_CHECKING:
    import pyarrow as pa
    from airflow.sdk import Context


class CuratedOperator(TrilhaBaseOperator):
    """Combine each dataset's staged parts into a new curated version when its inputs changed.

    INMET hourly data becomes one conformed table (one row per station and UTC hour, deduplicated,
    stably sorted, so a re-run is byte-identical), a daily aggregate per station and the station
    table. The version's ``manifest.json`` lists the exact staged inputs (key + sha256) and is written
    last. The same inputs never make a second version. Optionally loads into Snowflake.

    In a run triggered by ``trilha_staged`` events (and no ``project`` or ``dataset``), only the
    projects and datasets the events name are considered.

    :param project: only this project (templated; empty = all).
    :param dataset: only this dataset (templated; empty = all).
    :param snowflake_conn_id: load into Snowflake when this connection is configured (templated).
    :param workers: staged parts downloaded, checked against their sha256 and decoded at once.
    """

    consumes = STAGED

    template_fields: Sequence[str] = (
        *TrilhaBaseOperator.template_fields,
        "project",
        "dataset",
        "curated_bucket",
        "snowflake_conn_id",
    )

    def __init__(
        self,
        *,
        project: str = "",
        dataset: str = "",
        curated_bucket: str = config.DEFAULT_BUCKETS["bucket_curated"],
        snowflake_conn_id: str = config.SNOWFLAKE_CONN_ID,
        workers: int = 2,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.project = project
        self.dataset = dataset
        self.curated_bucket = curated_bucket
        self.snowflake_conn_id = snowflake_conn_id
        self.workers = workers

    def run(self, context: Context, counters: Counters) -> dict[str, Any]:
        run_id = context["run_id"]
        self.minio.check_buckets([self.curated_bucket])
        explicit = "project" if self.project else "dataset" if self.dataset else ""
        scope = self.event_scope(context, explicit=explicit, items="datasets")
        targets = [
            target
            for project, datasets in events.per_project(scope, self.project or None)
            for target in self.audit.curated_targets(project, self.dataset or None, datasets)
        ]
        versions = []
        for target in targets:
            counters.add("seen")
            made = self._curate(target, run_id, counters)
            if made:
                versions.append(made)
        changed = self.audit.curated_changes(str(run_id), self.curated_bucket)
        self.announce(context, [CURATED], self.curated_bucket, changed)
        return {"versions": versions, "scope": scope.why}

    def _curate(self, target: dict[str, Any], run_id: str, counters: Counters) -> dict[str, Any] | None:
        """Make the target dataset's next version unless its inputs are unchanged; its summary."""
        from trilha.domain.curate import curate

        pid, dataset, prefix = int(target["project_id"]), target["dataset"], target["project_prefix"]
        inputs = manifest.curated_inputs(self.audit.curated_inputs(pid, dataset))
        fp = lineage.inputs_fingerprint(inputs)
        if self._made_before(self.audit.curated_made_from(pid, dataset, fp), prefix, dataset, counters):
            return None
        parts = self._fetch_parts(inputs, counters)
        if parts is None:
            return None
        tables = curate(dataset, parts)
        made = self.audit.record_curated(
            pid,
            dataset,
            fp,
            lambda version: self._write_version(target, version, fp, inputs, tables, run_id, counters),
        )
        if isinstance(made, str):
            # A run that started at the same time made a version from these inputs meanwhile.
            self._made_before(made, prefix, dataset, counters)
            return None
        counters.add("new")
        counters.touched(f"{self.curated_bucket}/{made.manifest_key}")
        self.log.info(
            "%s/%s: new curated version %s from %s inputs: %s",
            prefix,
            dataset,
            made.version,
            len(inputs),
            manifest.rows_per_file(made.files),
        )
        self._maybe_load_snowflake(target, made.version, made.files, counters)
        return {
            "project": target["project_name"],
            "dataset": dataset,
            "version": made.version,
            "files": len(made.files),
        }

    def _fetch_parts(self, inputs: list[dict[str, Any]], counters: Counters) -> list[pa.Table] | None:
        """The staged parts' tables, in the inputs' order; ``None`` when any cannot be used (each
        such part is a failed item, and no version is made)."""
        from trilha.domain.parquet import parquet_bytes_to_table

        def fetch(inp: dict[str, Any]) -> tuple[Any, str | None]:
            """The part's table, or ``None`` and why it cannot be used."""
            try:
                data = self.minio.get_verified(inp["bucket"], inp["key"], inp["sha256"])
            except IntegrityError:
                return None, "staged file does not match its inventory sha256"
            except ObjectMissingError:
                return None, f"staged file is missing from bucket {inp['bucket']}"
            return parquet_bytes_to_table(data), None

        # Parts are downloaded, checked and decoded on threads (boto3 and Arrow release the GIL);
        # ``parallel`` keeps their order, which decides which duplicate hour wins.
        fetched = all_or_raise(parallel(fetch, inputs, self.workers))
        unusable = [(inp["key"], why) for inp, (_, why) in zip(inputs, fetched, strict=True) if why]
        for key, why in unusable:
            counters.problem("failed", key, why)
        return None if unusable else [part for part, _ in fetched]

    def _write_version(
        self,
        target: dict[str, Any],
        version: str,
        fp: str,
        inputs: list[dict[str, Any]],
        tables: dict[str, pa.Table],
        run_id: str,
        counters: Counters,
    ) -> manifest.CuratedRecord:
        """Write the version's tables, then its manifest (last); return its inventory record.

        Runs inside :meth:`~trilha.hooks.audit.AuditHook.record_curated`'s transaction, under the
        dataset's version lock."""
        from trilha.domain.parquet import table_to_parquet_bytes

        prefix, dataset = target["project_prefix"], target["dataset"]
        base = lineage.curated_prefix(prefix, dataset, version)
        files: dict[str, dict[str, Any]] = {}
        for name, table in sorted(tables.items()):
            key = join_key(base, f"{name}.parquet")
            digest = self.minio.put_bytes(self.curated_bucket, key, table_to_parquet_bytes(table))
            files[name] = manifest.file_entry(key, digest.sha256, table.num_rows, digest.size)
            counters.add("bytes", digest.size)
        document = manifest.curated_manifest(
            project=target["project_name"],
            project_prefix=prefix,
            dataset=dataset,
            version=version,
            created_at=datetime.now(UTC).isoformat(),
            run_id=run_id,
            code_version=include.code_version(),
            inputs_fingerprint=fp,
            inputs=inputs,
            files=files,
        )
        manifest_key = join_key(base, lineage.MANIFEST)
        m_digest = self.minio.put_bytes(
            self.curated_bucket,
            manifest_key,
            lineage.manifest_bytes(document),
            content_type="application/json",
        )
        return manifest.CuratedRecord(
            project_id=int(target["project_id"]),
            dataset=dataset,
            version=version,
            fingerprint=fp,
            inputs=inputs,
            files=files,
            bucket=self.curated_bucket,
            prefix=base,
            manifest_key=manifest_key,
            manifest_sha256=m_digest.sha256,
            run_id=run_id,
        )

    def _made_before(self, version: str | None, prefix: str, dataset: str, counters: Counters) -> bool:
        """Whether a version from these very inputs exists (``version``: its name, or ``None``)."""
        if version is None:
            return False
        self.log.info("%s/%s: inputs unchanged since %s; no new version", prefix, dataset, version)
        counters.add("skipped")
        return True

    def _maybe_load_snowflake(
        self, target: dict[str, Any], version: str, files: dict[str, Any], counters: Counters
    ) -> None:
        from trilha.hooks.snowflake import load_curated_version, snowflake_configured

        if not snowflake_configured(self.snowflake_conn_id):
            return
        load_curated_version(
            self.snowflake_conn_id, self.minio, self.curated_bucket, target, version, files, self.log
        )
        counters.add("snowflake_loaded")
