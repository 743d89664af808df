"""Operators of the processing half: staging, curated, dataset split.

Each reads its inputs from the audit store's inventories, does pure work with
:mod:`trilha.domain.formats`, :mod:`trilha.domain.contracts`, :mod:`trilha.domain.curate` and
:mod:`trilha.domain.splitting`, writes
Parquet and manifests through :class:`~trilha.hooks.minio.MinioHook`, and records an inventory row
that carries every output's sha256. pandas/pyarrow are imported inside ``execute`` only.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from trilha import config
from trilha.assets import CURATED, DATASETS, STAGED, STORED_RAW
from trilha.domain import events, lineage
from trilha.domain.keys import join_key, validate_key_prefix
from trilha.exceptions import IntegrityError, ObjectMissingError, ObjectWriteError, ParseError, TrilhaError
from trilha.operators.base import Counters, Progress, TrilhaBaseOperator
from trilha.operators.ingest import all_or_raise, chunked, parallel

if TYPE_CHECKING:
    import pyarrow as pa
    from airflow.sdk import Context

    from trilha.hooks.audit import Transaction

BATCH = 100
#: What the staged, curated and dataset events count per project (columns of *_changes.sql).
STAGING_COUNTS = ("rows_ok", "rows_rejected")
VERSION_COUNTS = ("rows",)


def _json(value: Any) -> Any:
    """A JSONB column as Python: drivers hand it over decoded, or as text when a cast was lost."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def _quarantine_table(parsed_rejected: pa.Table, contract_rejected: pa.Table, source: str) -> pa.Table | None:
    """One quarantine table: unparseable lines and contract violations, each with its reason and line."""
    import pyarrow as pa

    parts = []
    if parsed_rejected.num_rows:
        parts.append(
            pa.table(
                {
                    "_source_file": pa.array([source] * parsed_rejected.num_rows, pa.string()),
                    "_line_number": parsed_rejected.column("line_number").cast(pa.int64()),
                    "_reason": parsed_rejected.column("reason").cast(pa.string()),
                    "_raw_line": parsed_rejected.column("raw_line").cast(pa.string()),
                }
            )
        )
    if contract_rejected.num_rows:
        parts.append(contract_rejected)
    if not parts:
        return None
    return pa.concat_tables(parts, promote_options="permissive")


def _quarantine_reason(source: str, quarantine: pa.Table, bucket: str, key: str, shown: int = 3) -> str:
    """The audit's account of a file's quarantined rows: how many, where, and the first lines and why."""
    import pyarrow.compute as pc

    first = quarantine.take(pc.sort_indices(quarantine, sort_keys=[("_line_number", "ascending")])[:shown])
    lines = "; ".join(
        f"line {n}: {str(r)[:200]}"
        for n, r in zip(
            first.column("_line_number").to_pylist(), first.column("_reason").to_pylist(), strict=True
        )
    )
    more = f"; and {quarantine.num_rows - shown} more" if quarantine.num_rows > shown else ""
    return f"{source}: {quarantine.num_rows} row(s) quarantined to {bucket}/{key}: {lines}{more}"[:2000]


class StagingOperator(TrilhaBaseOperator):
    """Parse, clean and validate each stored raw file not yet staged by the current code version.

    Writes ``<staging bucket>/<project>/<dataset>/<name>__<sha12>.<code version>.parquet`` and, for
    rows that break the dataset's contract or cannot be parsed, a quarantine Parquet with a reason per
    row. A file that matches no layout, or has no data lines, is recorded as rejected with the reason;
    the batch goes on.

    In a run triggered by ``trilha_stored_raw`` events (and no ``project`` or ``key_prefix``), only
    the stored keys the events list are considered (a whole project when an event left keys out).

    :param project: only this project (templated; empty = all projects).
    :param key_prefix: only stored keys starting with this (templated).
    :param workers: files staged at once, on threads (Arrow parses, validates and writes Parquet
        without holding the GIL, so each thread keeps a core busy). Memory grows with it: each file
        in flight is held whole, with its parsed table.
    """

    consumes = STORED_RAW

    template_fields: Sequence[str] = (
        *TrilhaBaseOperator.template_fields,
        "project",
        "key_prefix",
        "staging_bucket",
    )

    def __init__(
        self,
        *,
        project: str = "",
        key_prefix: str = "",
        staging_bucket: str = config.DEFAULT_BUCKETS["bucket_staging"],
        workers: int = 2,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.project = project
        self.key_prefix = key_prefix
        self.staging_bucket = staging_bucket
        self.workers = workers

    def run(self, context: Context, counters: Counters) -> dict[str, Any]:
        run_id = context["run_id"]
        version = lineage.code_version()
        key_prefix = validate_key_prefix(self.key_prefix, what="key_prefix")
        self.minio.check_buckets([self.staging_bucket])
        explicit = "project" if self.project else "key_prefix" if key_prefix else ""
        scope = self.event_scope(context, explicit=explicit, items="keys")
        wanted = events.per_project(scope, self.project or None)
        todo = [
            row
            for project, keys in wanted
            for row in self.audit.query(
                "staging_candidates",
                {"project": project, "key_prefix": key_prefix, "code_version": version, "keys": keys},
            )
        ]
        progress = Progress(self.log, "staging", total=len(todo))
        rows_ok = rows_rejected = 0
        for batch in chunked(todo, BATCH):
            records: list[dict[str, Any]] = []
            outcomes = parallel(lambda src: self._stage_one(src, version, counters), batch, self.workers)
            for src, record in zip(batch, outcomes, strict=True):
                if isinstance(record, ObjectWriteError):
                    # The server refused this file's output while serving the others: its failed
                    # item (no inventory row, so the next run retries it), and the batch goes on.
                    counters.add("seen")
                    counters.problem("failed", f"{src['dest_bucket']}/{src['dest_key']}", str(record))
                    continue
                if isinstance(record, BaseException):
                    # Not bad input (that is a rejection inside _stage_one): an unreachable store or
                    # a bug. The batch's finished files are recorded first, so the retry skips them.
                    self._record(records, run_id)
                    raise record
                counters.add("seen")
                progress.update(1, int(src["size_bytes"]))
                if record is None:
                    continue  # a failed item: counted, and retried by the next run
                records.append(record)
                rows_ok += record["rows_ok"]
                rows_rejected += record["rows_rejected"]
            self._record(records, run_id)
        progress.finish()
        counters.add("rows_ok", rows_ok)
        counters.add("rows_rejected", rows_rejected)
        changed = self.run_changes(context, "staging_changes", self.staging_bucket, STAGING_COUNTS)
        self.announce(context, [STAGED], self.staging_bucket, changed)
        return {
            "code_version": version,
            "files": len(todo),
            "rows_ok": rows_ok,
            "rows_rejected": rows_rejected,
            "scope": scope.why,
        }

    def _stored_bytes(self, src: dict[str, Any], where: str, counters: Counters) -> bytes | None:
        """The stored raw file, checked against its storage sha256; ``None`` (a failed item) when it
        is missing or was changed behind the audit's back. No inventory row is written for it, so
        the next run retries once the object is restored."""
        try:
            return self.minio.get_verified(src["dest_bucket"], src["dest_key"], src["sha256"])
        except IntegrityError as err:
            counters.problem("failed", where, f"stored file does not match its storage_audit sha256: {err}")
        except ObjectMissingError:
            counters.problem("failed", where, f"stored file is missing from bucket {src['dest_bucket']}")
        return None

    def _stage_one(self, src: dict[str, Any], version: str, counters: Counters) -> dict[str, Any] | None:
        """The file's staging inventory row, or ``None`` when its stored bytes cannot be used."""
        from trilha.domain.contracts import load_contract, validate
        from trilha.domain.formats import parse_file
        from trilha.domain.parquet import table_to_parquet_bytes

        where = f"{src['dest_bucket']}/{src['dest_key']}"
        record: dict[str, Any] = {
            "project_id": src["project_id"],
            "storage_id": src["storage_audit_id"],
            "source_bucket": src["dest_bucket"],
            "source_key": src["dest_key"],
            "source_sha256": src["sha256"],
            "code_version": version,
            "dataset": None,
            "layout": None,
            "status": "rejected",
            "reason": None,
            "rows_in": 0,
            "rows_ok": 0,
            "rows_rejected": 0,
            "schema": None,
            "output_bucket": None,
            "output_key": None,
            "output_sha256": None,
            "quarantine_key": None,
            "quarantine_sha256": None,
        }
        data = self._stored_bytes(src, where, counters)
        if data is None:
            return None
        try:
            parsed = parse_file(data, src["logical_name"])
            contract = load_contract(parsed.dataset)
            ok, bad = validate(parsed.table, contract, src["logical_name"])
        except (ParseError, TrilhaError, ValueError, UnicodeError) as err:
            record["reason"] = str(err)[:2000]
            counters.problem("rejected", where, record["reason"])
            return record
        record.update(dataset=parsed.dataset, layout=parsed.layout)
        if parsed.rows_in == 0:
            # A header without rows is bad input (a failed export, a cut download), not an empty dataset.
            header = parsed.metadata.get("header_lines") or parsed.metadata.get("header_line")
            record["reason"] = (
                f"{src['logical_name']}: no data lines: expected rows after the header"
                + (f" (line {header})" if header else "")
                + ", got none"
            )
            counters.problem("rejected", where, record["reason"])
            return record
        record.update(rows_in=parsed.rows_in, rows_ok=ok.num_rows)
        quarantine = _quarantine_table(parsed.rejected, bad, src["logical_name"])
        record["rows_rejected"] = quarantine.num_rows if quarantine is not None else 0
        if record["rows_in"] != record["rows_ok"] + record["rows_rejected"]:
            # Never silently drop or invent a row: refuse the file rather than record a wrong count.
            record["reason"] = (
                f"row accounting mismatch: {record['rows_in']} data lines, {record['rows_ok']} ok + "
                f"{record['rows_rejected']} quarantined"
            )
            record.update(rows_ok=0, rows_rejected=record["rows_in"])
            counters.problem("failed", where, record["reason"])
            return record
        prefix = src["project_prefix"]
        out_key = lineage.staged_key(prefix, parsed.dataset, src["logical_name"], src["sha256"], version)
        digest = self.minio.put_bytes(self.staging_bucket, out_key, table_to_parquet_bytes(ok))
        record.update(
            status="staged",
            output_bucket=self.staging_bucket,
            output_key=out_key,
            output_sha256=digest.sha256,
            schema={f.name: str(f.type) for f in ok.schema},
        )
        if quarantine is not None:
            q_key = lineage.staged_key(
                prefix, parsed.dataset, src["logical_name"], src["sha256"], version, quarantine=True
            )
            q_digest = self.minio.put_bytes(self.staging_bucket, q_key, table_to_parquet_bytes(quarantine))
            record.update(
                quarantine_key=q_key,
                quarantine_sha256=q_digest.sha256,
                reason=_quarantine_reason(src["logical_name"], quarantine, self.staging_bucket, q_key),
            )
            self.log.info("%s: %s rows quarantined to %s", where, record["rows_rejected"], q_key)
        counters.add("new")
        counters.add("bytes", digest.size)
        counters.touched(f"{self.staging_bucket}/{out_key}")
        return record

    def _record(self, records: list[dict[str, Any]], run_id: str) -> None:
        if not records:
            return

        def col(name: str) -> list[Any]:
            return [r[name] for r in records]

        with self.audit.transaction() as tx:
            tx.run(
                "staging_insert",
                {
                    "project_ids": col("project_id"),
                    "storage_ids": col("storage_id"),
                    "source_buckets": col("source_bucket"),
                    "source_keys": col("source_key"),
                    "source_sha256": col("source_sha256"),
                    "code_versions": col("code_version"),
                    "datasets": col("dataset"),
                    "layouts": col("layout"),
                    "statuses": col("status"),
                    "reasons": col("reason"),
                    "rows_in": col("rows_in"),
                    "rows_ok": col("rows_ok"),
                    "rows_rejected": col("rows_rejected"),
                    "schemas": [json.dumps(r["schema"]) if r["schema"] else None for r in records],
                    "output_buckets": col("output_bucket"),
                    "output_keys": col("output_key"),
                    "output_sha256": col("output_sha256"),
                    "quarantine_keys": col("quarantine_key"),
                    "quarantine_sha256": col("quarantine_sha256"),
                    "run_ids": [run_id] * len(records),
                },
            )


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
        wanted = events.per_project(scope, self.project or None)
        targets = [
            target
            for project, datasets in wanted
            for target in self.audit.query(
                "curated_datasets",
                {"project": project, "dataset": self.dataset or None, "datasets": datasets},
            )
        ]
        versions = []
        for target in targets:
            counters.add("seen")
            made = self._curate(target, run_id, counters)
            if made:
                versions.append(made)
        changed = self.run_changes(context, "curated_changes", self.curated_bucket, VERSION_COUNTS)
        self.announce(context, [CURATED], self.curated_bucket, changed)
        return {"versions": versions, "scope": scope.why}

    def _curate(self, target: dict[str, Any], run_id: str, counters: Counters) -> dict[str, Any] | None:
        from trilha.domain.curate import curate
        from trilha.domain.parquet import parquet_bytes_to_table, table_to_parquet_bytes

        pid, dataset, prefix = int(target["project_id"]), target["dataset"], target["project_prefix"]
        staged = self.audit.query("curated_inputs", {"project_id": pid, "dataset": dataset})
        # Parts in the order their source content entered storage (then by key): curate() lets a later
        # part win a duplicate key, so a corrected file stored later replaces the older one hour by
        # hour, whatever its name. The manifest lists the inputs in this order.
        staged.sort(key=lambda r: (int(r["storage_audit_id"] or 0), r["output_key"]))
        inputs = [
            {
                "key": r["output_key"],
                "sha256": r["output_sha256"],
                "rows": int(r["rows_ok"]),
                "source_key": r["source_key"],
                "source_sha256": r["source_sha256"],
                "bucket": r["output_bucket"],
            }
            for r in staged
        ]
        fp = lineage.inputs_fingerprint(inputs)
        made = {"project_id": pid, "dataset": dataset, "fingerprint": fp}
        if self._made_before(self.audit.query("curated_by_fingerprint", made), prefix, dataset, counters):
            return None

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
        if unusable:
            return None
        tables = curate(dataset, [part for part, _ in fetched])
        with self.audit.transaction() as tx:
            nxt = tx.run("curated_next_version", {"project_id": pid, "dataset": dataset})[0]["next"]
            # Under the lock: a run that started at the same time may have made this version meanwhile.
            if self._made_before(tx.run("curated_by_fingerprint", made), prefix, dataset, counters):
                return None
            version = f"v{int(nxt):04d}"
            base = lineage.curated_prefix(prefix, dataset, version)
            files: dict[str, Any] = {}
            for name, table in sorted(tables.items()):
                key = join_key(base, f"{name}.parquet")
                digest = self.minio.put_bytes(self.curated_bucket, key, table_to_parquet_bytes(table))
                files[name] = {
                    "key": key,
                    "sha256": digest.sha256,
                    "rows": table.num_rows,
                    "bytes": digest.size,
                }
                counters.add("bytes", digest.size)
            manifest = {
                "project": target["project_name"],
                "project_prefix": prefix,
                "dataset": dataset,
                "version": version,
                "created_at": datetime.now(UTC).isoformat(),
                "run_id": run_id,
                "code_version": lineage.code_version(),
                "inputs_fingerprint": fp,
                "inputs": inputs,
                "files": files,
            }
            manifest_key = join_key(base, lineage.MANIFEST)
            m_digest = self.minio.put_bytes(
                self.curated_bucket,
                manifest_key,
                lineage.manifest_bytes(manifest),
                content_type="application/json",
            )
            main_rows = max((f["rows"] for f in files.values()), default=0)
            tx.run(
                "curated_insert",
                {
                    "project_id": pid,
                    "dataset": dataset,
                    "version": version,
                    "fingerprint": fp,
                    "inputs_count": len(inputs),
                    "rows": main_rows,
                    "bucket": self.curated_bucket,
                    "prefix": base,
                    "inputs": json.dumps(inputs),
                    "files": json.dumps(files),
                    "manifest_key": manifest_key,
                    "manifest_sha256": m_digest.sha256,
                    "run_id": run_id,
                },
            )
        counters.add("new")
        counters.touched(f"{self.curated_bucket}/{manifest_key}")
        self.log.info(
            "%s/%s: new curated version %s from %s inputs: %s",
            prefix,
            dataset,
            version,
            len(inputs),
            {n: f["rows"] for n, f in files.items()},
        )
        self._maybe_load_snowflake(target, version, files, counters)
        return {
            "project": target["project_name"],
            "dataset": dataset,
            "version": version,
            "files": len(files),
        }

    def _made_before(self, rows: list[dict[str, Any]], prefix: str, dataset: str, counters: Counters) -> bool:
        """Whether a version from these very inputs exists (``rows``: ``curated_by_fingerprint``)."""
        if not rows:
            return False
        self.log.info("%s/%s: inputs unchanged since %s; no new version", prefix, dataset, rows[0]["version"])
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


class DatasetSplitOperator(TrilhaBaseOperator):
    """Cut a curated version into train/validation/test, published atomically with a manifest.

    ``datasets/<project>/<dataset>/<version>/{train,validation,test}.parquet`` are written first and
    ``manifest.json`` (rows, sha256 per file, parameters, curated version) last: a version exists for
    readers exactly when its manifest does. The same cut (curated version + parameters) is made once.

    :param project: project name (templated).
    :param dataset: curated dataset (templated).
    :param table: which curated table to split (templated).
    :param strategy: ``hash`` or ``temporal`` (templated).
    :param ratios: train, validation, test fractions for ``hash`` (templated).
    :param key_columns: hash key columns (templated).
    :param time_column: time column for ``temporal`` (templated).
    :param validation_start: first instant of validation for ``temporal`` (templated).
    :param test_start: first instant of test for ``temporal`` (templated).
    :param curated_version: which curated version; empty = the latest (templated).
    :param drive_folder_id: also upload the version to this Drive folder (templated; empty = no).
    :param workers: split files serialized and uploaded at once (the manifest always goes last).

    In a run triggered by ``trilha_curated`` events (and no ``curated_version``), the latest version
    of ``dataset`` is cut for each project whose events name that dataset, instead of for ``project``.
    """

    consumes = CURATED

    template_fields: Sequence[str] = (
        *TrilhaBaseOperator.template_fields,
        "project",
        "dataset",
        "table",
        "strategy",
        "ratios",
        "key_columns",
        "time_column",
        "validation_start",
        "test_start",
        "curated_version",
        "drive_folder_id",
        "datasets_bucket",
        "gcp_conn_id",
    )

    def __init__(
        self,
        *,
        project: str,
        dataset: str = "inmet_hourly",
        table: str = "hourly",
        strategy: str = "hash",
        ratios: Any = (0.7, 0.15, 0.15),
        key_columns: Any = ("wmo_code", "observed_at"),
        time_column: str = "observed_at",
        validation_start: str = "",
        test_start: str = "",
        curated_version: str = "",
        drive_folder_id: str = "",
        datasets_bucket: str = config.DEFAULT_BUCKETS["bucket_datasets"],
        gcp_conn_id: str = config.GOOGLE_CONN_ID,
        workers: int = 2,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.project = project
        self.dataset = dataset
        self.table = table
        self.strategy = strategy
        self.ratios = ratios
        self.key_columns = key_columns
        self.time_column = time_column
        self.validation_start = validation_start
        self.test_start = test_start
        self.curated_version = curated_version
        self.drive_folder_id = drive_folder_id
        self.datasets_bucket = datasets_bucket
        self.gcp_conn_id = gcp_conn_id
        self.workers = workers

    def split_params(self) -> dict[str, Any]:
        """The parameters that define the cut, validated, with a clear message for each mistake."""
        strategy = str(self.strategy).strip().lower()
        if strategy == "hash":
            ratios = _as_list(self.ratios, "ratios")
            try:
                values = [float(r) for r in ratios]
            except ValueError:
                raise AirflowFailException(f"ratios: expected three numbers, got {self.ratios!r}") from None
            if len(values) != 3 or any(v < 0 for v in values) or abs(sum(values) - 1.0) > 1e-6:
                raise AirflowFailException(
                    f"ratios: expected three non-negative fractions (train, validation, test) summing to 1, "
                    f"got {values}"
                )
            keys = [str(k) for k in _as_list(self.key_columns, "key_columns")]
            return {"strategy": "hash", "table": self.table, "ratios": values, "key_columns": keys}
        if strategy == "temporal":
            if not self.validation_start or not self.test_start:
                raise AirflowFailException(
                    "temporal split: expected validation_start and test_start (ISO dates such as 2024-07-01)"
                )
            return {
                "strategy": "temporal",
                "table": self.table,
                "time_column": self.time_column,
                "validation_start": str(self.validation_start),
                "test_start": str(self.test_start),
            }
        raise AirflowFailException(f"strategy: expected 'hash' or 'temporal', got {self.strategy!r}")

    def run(self, context: Context, counters: Counters) -> dict[str, Any]:
        run_id = context["run_id"]
        params = self.split_params()
        self.minio.check_buckets([self.datasets_bucket])
        scope = self.event_scope(
            context, explicit="curated_version" if self.curated_version else "", items="datasets"
        )
        if scope.projects is None:
            summary = self._cut(self.project, params, run_id, counters) or {}
        else:
            projects = [p.name for p in scope.projects if p.items is None or self.dataset in p.items]
            if not projects:
                self.log.info(
                    "the triggering events name no new curated version of %r: nothing to cut", self.dataset
                )
            cuts = [
                cut for name in projects if (cut := self._cut(name, params, run_id, counters, scoped=True))
            ]
            summary = cuts[0] if len(cuts) == 1 else {"cuts": cuts}
        changed = self.run_changes(context, "dataset_changes", self.datasets_bucket, VERSION_COUNTS)
        self.announce(context, [DATASETS], self.datasets_bucket, changed)
        return {**summary, "scope": scope.why}

    def _cut(
        self, project: str, params: dict[str, Any], run_id: str, counters: Counters, scoped: bool = False
    ) -> dict[str, Any] | None:
        """Make the cut of ``project``'s curated version (unless it exists); its summary. A project
        without a version of the dataset fails the task, or, in a run scoped by events, is skipped
        (``None``): an event whole-project scope may name a project that has no such dataset."""
        from trilha.domain.parquet import parquet_bytes_to_table
        from trilha.domain.splitting import hash_split, temporal_split

        rows = self.audit.query(
            "curated_select",
            {"project": project, "dataset": self.dataset, "version": self.curated_version or None},
        )
        if not rows and scoped:
            self.log.info("project %r has no curated version of %r: nothing to cut", project, self.dataset)
            return None
        if not rows:
            raise AirflowFailException(
                f"no curated version of dataset {self.dataset!r} for project {project!r}"
                + (f" named {self.curated_version!r}" if self.curated_version else "")
                + ": run the curated DAG first"
            )
        cur = rows[0]
        counters.add("seen")
        files = _json(cur["files"])
        if params["table"] not in files:
            raise AirflowFailException(
                f"table: expected one of {sorted(files)} in curated version {cur['version']}, "
                f"got {params['table']!r}"
            )
        fp = lineage.fingerprint({**params, "curated_id": int(cur["id"])})
        drive_folder = (self.drive_folder_id or "").strip() or None
        existing = self.audit.query("dataset_by_fingerprint", {"curated_id": cur["id"], "fingerprint": fp})
        if existing:
            return self._existing_cut(existing[0], drive_folder, counters)
        source = files[params["table"]]
        table = parquet_bytes_to_table(self._curated_bytes(cur, source))
        try:
            if params["strategy"] == "hash":
                splits = hash_split(table, params["key_columns"], tuple(params["ratios"]))
            else:
                splits = temporal_split(
                    table, params["time_column"], params["validation_start"], params["test_start"]
                )
        except (ValueError, KeyError) as err:
            raise AirflowFailException(f"split parameters: {err}") from None
        version = lineage.dataset_version(cur["version"], params["strategy"], fp)
        base = join_key(cur["project_prefix"], self.dataset, version)
        with self.audit.transaction() as tx:
            # Two runs making the same cut at once: the second waits here, then finds the first's row
            # and writes nothing, so the manifest object is always the one the inventory describes.
            tx.run("dataset_lock", {"project_id": cur["project_id"], "fingerprint": fp})
            raced = tx.run("dataset_by_fingerprint", {"curated_id": cur["id"], "fingerprint": fp})
            if not raced:
                record = self._write_cut(tx, cur, source, params, fp, version, base, splits, run_id, counters)
        if raced:
            return self._existing_cut(raced[0], drive_folder, counters)
        self.log.info("dataset version %s: %s", version, record["rows"])
        if drive_folder:
            # After the inventory row: a failed export leaves a complete, recorded version in the lake,
            # and the re-run (same cut, same folder) finds the row and does only the export.
            self._export_to_drive(record, drive_folder, counters)
        return {
            "project": cur["project_name"],
            "version": version,
            "created": True,
            "rows": record["rows"],
            "manifest": record["manifest_key"],
        }

    def _write_cut(
        self,
        tx: Transaction,
        cur: dict[str, Any],
        source: dict[str, Any],
        params: dict[str, Any],
        fp: str,
        version: str,
        base: str,
        splits: dict[str, Any],
        run_id: str,
        counters: Counters,
    ) -> dict[str, Any]:
        """Write the three files, then the manifest, then the inventory row (in ``tx``); return the row.

        :param source: the curated table that was cut (its entry in the curated version's files).
        """
        from trilha.domain.parquet import table_to_parquet_bytes

        def write(name: str) -> dict[str, Any]:
            key = join_key(base, f"{name}.parquet")
            digest = self.minio.put_bytes(self.datasets_bucket, key, table_to_parquet_bytes(splits[name]))
            return {"key": key, "sha256": digest.sha256, "rows": splits[name].num_rows, "bytes": digest.size}

        # The split files are serialized and uploaded on threads (Arrow and boto3 release the GIL);
        # the manifest is written only once every one of them is in place.
        written = all_or_raise(parallel(write, list(lineage.SPLITS), self.workers))
        files: dict[str, Any] = dict(zip(lineage.SPLITS, written, strict=True))
        for entry in files.values():
            counters.add("bytes", entry["bytes"])
        rows = {n: f["rows"] for n, f in files.items()}
        manifest = {
            "project": cur["project_name"],
            "dataset": self.dataset,
            "version": version,
            "created_at": datetime.now(UTC).isoformat(),
            "run_id": run_id,
            "parameters": params,
            "rows": rows,
            "files": files,
            "lineage": {
                "curated_version": cur["version"],
                "curated_manifest": cur["manifest_key"],
                "curated_manifest_sha256": cur["manifest_sha256"],
                "curated_table": source,
            },
        }
        manifest_key = join_key(base, lineage.MANIFEST)
        m_digest = self.minio.put_bytes(
            self.datasets_bucket,
            manifest_key,
            lineage.manifest_bytes(manifest),
            content_type="application/json",
        )
        record = {
            "project_id": cur["project_id"],
            "dataset": self.dataset,
            "version": version,
            "curated_id": cur["id"],
            "strategy": params["strategy"],
            "params": params,
            "fingerprint": fp,
            "rows": rows,
            "bucket": self.datasets_bucket,
            "prefix": base,
            "files": files,
            "manifest_key": manifest_key,
            "manifest_sha256": m_digest.sha256,
            "run_id": run_id,
        }
        as_json = {k: json.dumps(record[k]) for k in ("params", "rows", "files")}
        inserted = tx.run("dataset_insert", {**record, **as_json})
        if not inserted:
            # Under the lock only another cut whose fingerprint starts with the same 8 hex digits can
            # hold this name: refuse rather than describe its objects with this cut's record.
            raise TrilhaError(f"dataset version {version!r} exists with other parameters; objects at {base}/")
        counters.add("new")
        counters.touched(f"{self.datasets_bucket}/{manifest_key}")
        return {**record, "id": int(inserted[0]["id"])}

    def _curated_bytes(self, cur: dict[str, Any], source: dict[str, Any]) -> bytes:
        """The curated table's Parquet, checked against the sha256 its version recorded."""
        where = f"s3://{cur['bucket']}/{source['key']}"
        try:
            return self.minio.get_verified(cur["bucket"], source["key"], source["sha256"])
        except IntegrityError as err:
            raise AirflowFailException(
                f"curated version {cur['version']}: {err}; the file was changed after the "
                "version was made, so no dataset is cut from it"
            ) from None
        except ObjectMissingError:
            raise AirflowFailException(
                f"curated version {cur['version']}: {where} is missing; expected the file its manifest lists"
            ) from None

    def _existing_cut(
        self, row: dict[str, Any], drive_folder: str | None, counters: Counters
    ) -> dict[str, Any]:
        """The cut exists: nothing to write, unless its export to ``drive_folder`` has not been done."""
        self.log.info("this cut already exists as %s; nothing to write", row["version"])
        counters.add("skipped")
        if drive_folder and row["drive_folder_id"] != drive_folder:
            self._export_to_drive(row, drive_folder, counters)
        return {"version": row["version"], "created": False}

    def _export_to_drive(self, row: dict[str, Any], folder_id: str, counters: Counters) -> None:
        """Upload a recorded version to ``folder_id/<dataset>/<version>/``, read back from the lake and
        checked against its record, so Colab gets byte for byte what the manifest describes. The
        manifest goes last there too: a reader never sees a version without all of its files."""
        from trilha.hooks.drive import TrilhaDriveHook

        files = _json(row["files"])
        wanted = [(files[n]["key"], files[n]["sha256"]) for n in lineage.SPLITS]
        wanted.append((row["manifest_key"], row["manifest_sha256"]))
        hook = TrilhaDriveHook(gcp_conn_id=self.gcp_conn_id)
        with tempfile.TemporaryDirectory(prefix="trilha-export-") as tmp:
            paths = []
            for key, sha256 in wanted:
                name = key.rsplit("/", 1)[-1]
                path = Path(tmp) / name
                self.minio.download_verified(row["bucket"], key, path, sha256)
                paths.append((path, f"{self.dataset}/{row['version']}/{name}"))
            hook.upload_files(paths, folder_id)
        self.audit.query("dataset_mark_exported", {"id": int(row["id"]), "drive_folder_id": folder_id})
        counters.add("exported", len(paths))
        self.log.info("exported %s (%s files) to Drive folder %s", row["version"], len(paths), folder_id)


def _as_list(value: Any, name: str) -> list[Any]:
    """Params arrive as lists, tuples, or (templated) strings like ``"[0.7, 0.15, 0.15]"``."""
    if isinstance(value, list | tuple):
        return list(value)
    text = str(value).strip()
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        parsed = [v.strip() for v in text.strip("[]()").replace("'", "").split(",") if v.strip()]
    if not isinstance(parsed, list):
        raise AirflowFailException(f"{name}: expected a list, got {value!r}")
    return parsed
