"""The ``rclone check`` of the lake: every bucket and project compared with the audit.

For each bucket of the five layers (the configured ones, and any other that audit rows name), the
audit's claims (``include/sql/queries/reconcile_<layer>.sql``, and the report objects of earlier
runs) are compared with the bucket's listing by :func:`trilha.domain.drift.compare`. The listing decides
most objects (size, and the ETag against the ETag or md5 the audit recorded); only objects it cannot
decide get a HEAD for their sha256 metadata, or with ``rehash`` every audited object is read and
hashed. Nothing is ever deleted or changed in the lake. ``meta.audit_log`` rows still ``running``
whose process is gone are marked ``abandoned`` (:func:`trilha.domain.drift.abandoned`).

The report goes three ways: one ``meta.reconcile_report`` row per bucket, one JSON object
``_reconcile/<UTC time>__<run id>.json`` in the storage bucket (its sha256 in those rows), and the
caller's log (the operator returns its summary for the run log document).

``python -m trilha.ops.reconcile [--project P] [--bucket LAYER] [--grace-minutes N] [--rehash] [--json]``
does the same from the shell, through the ``trilha_postgres`` and ``trilha_minio`` connections
(``AIRFLOW_CONN_*`` in ``.trilha/env`` locally). Bucket names come from ``AIRFLOW_VAR_TRILHA_BUCKET_*``
or ``TRILHA_BUCKET_*``, else the defaults. It prints a table per bucket and exits 0 when clean, 1 on
drift, 2 when the audit store or S3 cannot be used (or a parameter is wrong).

Library use: :func:`reconcile` takes an :class:`~trilha.hooks.audit.AuditHook` and a
:class:`~trilha.hooks.minio.MinioHook`; :class:`~trilha.operators.reconcile.ReconcileOperator` is a
thin wrapper around it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trilha import config
from trilha.domain import drift
from trilha.domain.keys import validate_bucket
from trilha.exceptions import ConnectionSetupError, ObjectMissingError, ReconcileError, TrilhaError

if TYPE_CHECKING:
    from trilha.hooks.audit import AuditHook
    from trilha.hooks.minio import MinioHook

log = logging.getLogger(__name__)

#: The layers, in pipeline order; each is a bucket (a Variable ``trilha_bucket_<layer>``).
LAYERS = ("reception", "storage", "staging", "curated", "datasets")
#: Where the report objects go, in the storage bucket.
REPORT_PREFIX = "_reconcile/"
#: Drift items kept per bucket in ``meta.reconcile_report.drift`` (the report object has them all).
MAX_DRIFT_IN_TABLE = 200
#: Drift items per bucket in the summary (XCom, run log document).
MAX_DRIFT_IN_SUMMARY = 50
#: Drift items per bucket printed by the table.
MAX_DRIFT_PRINTED = 20
DEFAULT_GRACE_MINUTES = 60
DEFAULT_ABANDON_AFTER_HOURS = 24


@dataclass(frozen=True)
class Options:
    """What a reconcile run checks, and how.

    :param project: only this project's keys (its prefix); ``None``: every project.
    :param layer: only this layer's bucket; ``None``: every layer.
    :param grace: younger than this, a difference is ``pending``, not drift.
    :param rehash: read and hash every audited object instead of trusting its metadata (slow).
    :param abandon_after: a ``running`` audit_log row older than this is abandoned whatever its host.
    :param workers: HEADs (or reads) at once.
    """

    project: str | None = None
    layer: str | None = None
    grace: timedelta = timedelta(minutes=DEFAULT_GRACE_MINUTES)
    rehash: bool = False
    abandon_after: timedelta = timedelta(hours=DEFAULT_ABANDON_AFTER_HOURS)
    workers: int = 4


def _whole(value: Any, name: str, unit: str, least: int = 0) -> int:
    expected = f"{name}: expected a whole number of {unit} ({least} or more)"
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ReconcileError(f"{expected}, got {value!r}") from None
    if number < least:
        raise ReconcileError(f"{expected}, got {number}")
    return number


def parse_options(
    *,
    project: Any = None,
    bucket: Any = None,
    grace_minutes: Any = DEFAULT_GRACE_MINUTES,
    rehash: Any = False,
    abandon_after_hours: Any = DEFAULT_ABANDON_AFTER_HOURS,
    workers: int = 4,
) -> Options:
    """:class:`Options` from Params, which arrive as (templated) strings; empty means "every"."""
    layer = str(bucket or "").strip().lower() or None
    if layer is not None and layer not in LAYERS:
        raise ReconcileError(
            f"bucket: expected one of {', '.join(LAYERS)} or empty (every bucket), got {bucket!r}"
        )
    flag = str(rehash).strip().lower()
    if flag not in ("true", "false", "1", "0", "yes", "no", "", "none"):
        raise ReconcileError(f"rehash: expected true or false, got {rehash!r}")
    return Options(
        project=str(project or "").strip() or None,
        layer=layer,
        grace=timedelta(minutes=_whole(grace_minutes, "grace_minutes", "minutes")),
        rehash=flag in ("true", "1", "yes"),
        # At least an hour: with 0, every task running right now on another host would be abandoned.
        abandon_after=timedelta(hours=_whole(abandon_after_hours, "abandon_after_hours", "hours", least=1)),
        workers=max(1, int(workers)),
    )


@dataclass
class Outcome:
    """What one reconcile run found and wrote."""

    run_id: str
    checked_at: datetime
    options: Options
    project_prefix: str | None
    #: bucket -> the layers whose rows describe it.
    layers: dict[str, list[str]]
    report: drift.Report
    abandoned: list[drift.Abandoned]
    #: Buckets audit rows name that do not exist (every claim on them is missing_in_lake).
    missing_buckets: list[str] = field(default_factory=list)
    heads: int = 0
    reads: int = 0
    bytes_read: int = 0
    duration_s: float = 0.0
    report_bucket: str = ""
    report_key: str = ""
    report_sha256: str = ""

    @property
    def drift_total(self) -> int:
        return self.report.drift_total

    @property
    def report_url(self) -> str:
        return f"s3://{self.report_bucket}/{self.report_key}"

    def _head(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "checked_at": self.checked_at.isoformat(),
            "project": self.options.project,
            "project_prefix": self.project_prefix,
            "layer": self.options.layer,
            "grace_minutes": int(self.options.grace.total_seconds() // 60),
            "rehash": self.options.rehash,
            "abandon_after_hours": self.options.abandon_after.total_seconds() / 3600,
        }

    def _tail(self) -> dict[str, Any]:
        return {
            "heads": self.heads,
            "reads": self.reads,
            "bytes_read": self.bytes_read,
            "duration_s": round(self.duration_s, 3),
            "missing_buckets": self.missing_buckets,
        }

    def document(self) -> dict[str, Any]:
        """The whole report: what the JSON object in the lake holds (every item, every bucket)."""
        buckets = {
            name: {
                "layers": self.layers.get(name, []),
                "counts": b.counts,
                "drift_total": b.drift_total,
                "superseded": b.superseded,
                "by_project": b.by_project,
                "drift": [i.as_dict() for i in b.drift],
                "pending": [i.as_dict() for i in b.pending],
            }
            for name, b in self.report.buckets.items()
        }
        return {
            **self._head(),
            "counts": self.report.counts(),
            "drift_total": self.drift_total,
            "buckets": buckets,
            "abandoned": [a.as_dict() for a in self.abandoned],
            **self._tail(),
        }

    def summary(self) -> dict[str, Any]:
        """A bounded summary (XCom, the run log document): counts, the first drift items, the report."""
        return {
            **self._head(),
            "drift_total": self.drift_total,
            "counts": self.report.counts(),
            "buckets": {
                name: {
                    "layers": self.layers.get(name, []),
                    "counts": b.counts,
                    "drift_total": b.drift_total,
                    "drift": [i.as_dict() for i in b.drift[:MAX_DRIFT_IN_SUMMARY]],
                }
                for name, b in self.report.buckets.items()
            },
            "abandoned": [a.as_dict() for a in self.abandoned[:MAX_DRIFT_IN_SUMMARY]],
            "report": self.report_url if self.report_key else None,
            "report_sha256": self.report_sha256 or None,
            **self._tail(),
        }

    def failure_line(self) -> str:
        """One line naming the drift per bucket and where the report is."""
        parts = []
        for name, b in self.report.buckets.items():
            if b.drift_total:
                counts = ", ".join(f"{s} {b.counts[s]}" for s in drift.DRIFT if b.counts[s])
                parts.append(f"{name}: {counts}")
        return (
            f"reconcile found {self.drift_total} drift item(s): {'; '.join(parts)}. "
            f"Report: {self.report_url} (meta.reconcile_report run_id {self.run_id!r})"
        )


# ------------------------------------------------------------------------------------------ helpers


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (a zombie does not; one of another user does)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][:1]
    except (OSError, IndexError):
        return True  # no /proc (not Linux): kill(0) is all there is
    return state != "Z"


def report_key(checked_at: datetime, run_id: str) -> str:
    """``_reconcile/<UTC time to the millisecond>__<run id, made key-safe>.json``."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id).strip("._")[:120] or "run"
    when = checked_at.astimezone(UTC)
    return f"{REPORT_PREFIX}{when:%Y%m%dT%H%M%S}.{when.microsecond // 1000:03d}Z__{safe}.json"


def _expected(row: Mapping[str, Any]) -> drift.Expected:
    return drift.Expected(
        bucket=row["bucket"],
        key=row["key"],
        size=None if row["size_bytes"] is None else int(row["size_bytes"]),
        md5=(row["md5"] or "").strip() or None,
        sha256=(row["sha256"] or "").strip() or None,
        recorded_at=row["recorded_at"],
        source=row["source"],
        etag=(row["etag"] or "").strip('" ') or None,
        deleted=bool(row["deleted"]),
        seq=int(row["seq"]),
    )


def _bounded(items: list[drift.Item]) -> list[dict[str, Any]]:
    return [i.as_dict() for i in items[:MAX_DRIFT_IN_TABLE]]


# --------------------------------------------------------------------------------------- reconcile


def reconcile(
    audit: AuditHook,
    minio: MinioHook,
    *,
    run_id: str,
    buckets: Mapping[str, str],
    options: Options,
    own_run: tuple[str, str] | None = None,
    hostname: str | None = None,
    alive: Callable[[int], bool] = pid_alive,
    say: Callable[[str], None] = log.info,
) -> Outcome:
    """Compare the lake with the audit, mark abandoned runs, and record the report.

    :param buckets: layer -> configured bucket name (every layer of :data:`LAYERS`).
    :param own_run: ``(dag_id, run_id)`` of the calling task: its audit_log rows are never abandoned.
    :param hostname: this host's name (default :func:`socket.gethostname`).
    :param alive: tells whether a pid of this host runs.
    :param say: where progress lines go (the task log).
    :raises ReconcileError: an unknown project.
    :raises ConnectionSetupError: a connection or a configured bucket that cannot be used.
    """
    started = time.monotonic()
    checked_at = datetime.now(UTC)
    configured = {layer: validate_bucket(buckets[layer]) for layer in LAYERS}
    prefix = _project_prefix(audit, options.project)
    key_prefix = f"{prefix}/" if prefix else None
    layers = [options.layer] if options.layer else list(LAYERS)

    # Which buckets: the configured ones of the chosen layers, and every bucket their rows name.
    served: dict[str, list[str]] = {}
    for layer in layers:
        served.setdefault(configured[layer], []).append(layer)
    for layer, bucket in audit.reconcile_bucket_layers(key_prefix):
        if layer in layers and bucket:
            served.setdefault(bucket, [])
            if layer not in served[bucket]:
                served[bucket].append(layer)
    minio.check_buckets(sorted({*(configured[layer] for layer in layers), configured["storage"]}))
    names = sorted(served)

    # What the audit expects in them: every layer's rows (a bucket may serve more than one layer),
    # read before the listing, so an object a run writes meanwhile is at worst a young orphan.
    expected = [_expected(r) for r in audit.reconcile_claims(names, key_prefix)]
    claims: dict[tuple[str, str], list[drift.Expected]] = {}
    for e in expected:
        claims.setdefault((e.bucket, e.key), []).append(e)
    say(
        f"reconcile: {len(expected)} audit claim(s) on {len(names)} bucket(s) "
        f"{', '.join(names)}{f' under {key_prefix}' if key_prefix else ''}"
    )

    # What the lake holds. A configured bucket was checked above; one that only audit rows name may
    # be gone, which makes every claim on it missing_in_lake.
    found: list[drift.Found] = []
    missing_buckets: list[str] = []
    for name in names:
        before = len(found)
        if name not in configured.values() and not minio.bucket_exists(name):
            missing_buckets.append(name)
            say(f"reconcile: bucket {name!r}, named by audit rows, does not exist")
        else:
            for obj in minio.iter_objects(name, key_prefix or ""):
                found.append(drift.Found(name, obj.key, obj.size, obj.etag, obj.last_modified))
        say(f"reconcile: {name}: {len(found) - before} object(s) listed")

    outcome = Outcome(
        run_id=run_id,
        checked_at=checked_at,
        options=options,
        project_prefix=prefix,
        layers={n: served[n] for n in names},
        report=drift.Report({}),
        abandoned=[],
        missing_buckets=missing_buckets,
    )
    found = _complete(minio, found, claims, options, outcome, say)
    outcome.report = drift.compare(expected, found, datetime.now(UTC), options.grace, buckets=names)

    # Task runs whose process is gone.
    now = datetime.now(UTC)
    gone = drift.abandoned(
        audit.running_task_runs(),
        hostname=hostname or socket.gethostname(),
        alive=alive,
        now=now,
        max_age=options.abandon_after,
        own_run=own_run,
    )
    if gone:
        marked = audit.mark_abandoned([a.id for a in gone], [a.reason for a in gone], now)
        gone = [a for a in gone if a.id in marked]
        for a in gone:
            where = f"{a.dag_id}/{a.run_id}/{a.task_id}"
            say(f"reconcile: meta.audit_log id {a.id} ({where}) marked abandoned: {a.reason}")
    outcome.abandoned = gone
    outcome.duration_s = time.monotonic() - started
    _record(audit, minio, outcome, configured["storage"])
    return outcome


def _project_prefix(audit: AuditHook, project: str | None) -> str | None:
    if not project:
        return None
    row = audit.get_or_create_project(project, None, None)
    if not row:
        known = sorted(audit.project_names())
        raise ReconcileError(
            f"project {project!r} is not registered in projects_registry; expected one of "
            f"{', '.join(repr(k) for k in known[:20]) or '(no project yet)'}, or empty for every project"
        )
    return str(row["prefix"])


def _complete(
    minio: MinioHook,
    found: list[drift.Found],
    claims: Mapping[tuple[str, str], list[drift.Expected]],
    options: Options,
    outcome: Outcome,
    say: Callable[[str], None],
) -> list[drift.Found]:
    """``found`` with the sha256 of the objects the listing cannot decide (HEAD: metadata), or with
    ``rehash`` of every object an audit row describes by sha256 (read: content). An object gone in
    between is left out (it is then missing)."""
    if options.rehash:
        todo = [
            i
            for i, f in enumerate(found)
            if any(c.sha256 and not c.deleted for c in claims.get((f.bucket, f.key), []))
        ]
    else:
        todo = [i for i, f in enumerate(found) if drift.needs_content(claims.get((f.bucket, f.key), []), f)]
    if not todo:
        return found

    def head(f: drift.Found) -> drift.Found | None:
        info = minio.stat(f.bucket, f.key)
        if info is None:
            return None
        return drift.Found(f.bucket, f.key, info.size, info.etag, info.last_modified, info.sha256)

    def read(f: drift.Found) -> drift.Found | None:
        digest = hashlib.sha256()
        size = 0
        try:
            for chunk in minio.iter_chunks(f.bucket, f.key):
                digest.update(chunk)
                size += len(chunk)
        except ObjectMissingError:
            return None
        return replace(f, size=size, sha256=digest.hexdigest(), sha256_read=True)

    fn = read if options.rehash else head
    with ThreadPoolExecutor(max_workers=options.workers) as pool:
        results = list(pool.map(fn, [found[i] for i in todo]))
    if options.rehash:
        outcome.reads = len(todo)
        outcome.bytes_read = sum(r.size for r in results if r is not None)
        say(f"reconcile: read and hashed {len(todo)} object(s), {outcome.bytes_read / 1e6:.1f} MB")
    else:
        outcome.heads = len(todo)
        say(f"reconcile: HEAD of {len(todo)} object(s) the listing could not decide")
    completed = dict(zip(todo, results, strict=True))
    out = [completed[i] if i in completed else f for i, f in enumerate(found)]
    return [f for f in out if f is not None]


def _record(audit: AuditHook, minio: MinioHook, outcome: Outcome, storage_bucket: str) -> None:
    """The report object first, then its rows (bytes before the audit, as everywhere)."""
    key = report_key(outcome.checked_at, outcome.run_id)
    outcome.report_bucket, outcome.report_key = storage_bucket, key
    data = (json.dumps(outcome.document(), indent=2, sort_keys=True, default=str) + "\n").encode()
    digest = minio.put_bytes(storage_bucket, key, data, content_type="application/json")
    outcome.report_sha256 = digest.sha256
    from trilha.hooks.audit import ReconcileBucketRow

    rows: list[ReconcileBucketRow] = [
        ReconcileBucketRow(
            bucket=name,
            layers=outcome.layers.get(name, []),
            counts=b.counts,
            drift=_bounded(b.drift),
            drift_total=b.drift_total,
        )
        for name, b in outcome.report.buckets.items()
    ]
    audit.record_reconcile_report(
        run_id=outcome.run_id,
        project_prefix=outcome.project_prefix,
        checked_at=outcome.checked_at,
        grace_minutes=int(outcome.options.grace.total_seconds() // 60),
        rehash=outcome.options.rehash,
        report_bucket=storage_bucket,
        report_key=key,
        report_sha256=digest.sha256,
        report_md5=digest.md5,
        report_bytes=digest.size,
        buckets=rows,
    )


# -------------------------------------------------------------------------------------------- table


def format_table(outcome: Outcome, max_items: int = MAX_DRIFT_PRINTED) -> str:
    """The report as text: a line per bucket, then the drift items, abandoned runs and the report."""
    scope = (
        f"project {outcome.options.project!r} ({outcome.project_prefix}/)"
        if outcome.project_prefix
        else "every project"
    )
    grace = int(outcome.options.grace.total_seconds() // 60)
    lines = [
        f"reconcile {outcome.run_id}: {scope}, grace {grace} min"
        + (", rehash" if outcome.options.rehash else "")
        + f", checked {outcome.checked_at.isoformat(timespec='seconds')} in {outcome.duration_s:.1f} s",
        f"{'bucket':<24} {'layers':<18} " + " ".join(f"{s:>16}" for s in drift.STATUSES) + f" {'drift':>7}",
    ]
    for name, b in outcome.report.buckets.items():
        layers = ",".join(outcome.layers.get(name, [])) or "-"
        lines.append(
            f"{name:<24} {layers:<18} "
            + " ".join(f"{b.counts[s]:>16}" for s in drift.STATUSES)
            + f" {b.drift_total:>7}"
        )
    for name, b in outcome.report.buckets.items():
        for item in b.drift[:max_items]:
            lines.append(f"  {item.status:<16} s3://{name}/{item.key}: {item.reason}")
        if len(b.drift) > max_items:
            lines.append(f"  ... and {len(b.drift) - max_items} more in {name} (see the report object)")
    for name in outcome.missing_buckets:
        lines.append(f"  bucket {name!r} is named by audit rows but does not exist")
    for a in outcome.abandoned:
        lines.append(f"  abandoned: meta.audit_log id {a.id} {a.dag_id}/{a.run_id}/{a.task_id}: {a.reason}")
    lines.append(f"report: {outcome.report_url} (sha256 {outcome.report_sha256})")
    if outcome.drift_total:
        lines.append(outcome.failure_line())
    else:
        counts = outcome.report.counts()
        lines.append(f"no drift ({counts[drift.MATCH]} match, {counts[drift.PENDING]} pending)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- CLI


def configured_buckets(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Bucket names outside Airflow: ``AIRFLOW_VAR_TRILHA_BUCKET_<LAYER>`` (the Variable as Airflow
    reads it from the environment), else ``TRILHA_BUCKET_<LAYER>``, else the seeds' default."""
    env = os.environ if environ is None else environ
    defaults = config.default_buckets()
    out = {}
    for layer in LAYERS:
        out[layer] = env.get(f"AIRFLOW_VAR_TRILHA_BUCKET_{layer.upper()}") or env.get(
            f"TRILHA_BUCKET_{layer.upper()}", defaults[f"bucket_{layer}"]
        )
    return out


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trilha.ops.reconcile", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--project", help="only this project (its name); default: every project")
    parser.add_argument("--bucket", choices=LAYERS, help="only this layer's bucket; default: every bucket")
    parser.add_argument("--grace-minutes", type=int, default=DEFAULT_GRACE_MINUTES, metavar="N")
    parser.add_argument("--rehash", action="store_true", help="read and hash every audited object (slow)")
    parser.add_argument("--abandon-after-hours", type=int, default=DEFAULT_ABANDON_AFTER_HOURS, metavar="N")
    parser.add_argument("--json", action="store_true", help="print the whole report as JSON instead")
    parser.add_argument("--postgres-conn-id", default=config.POSTGRES_CONN_ID)
    parser.add_argument("--aws-conn-id", default=config.S3_CONN_ID)
    args = parser.parse_args(list(argv) if argv is not None else None)
    # The Amazon provider logs an info line on stdout for every S3 client it builds, which is not part
    # of the report (and would break --json): quiet it before Airflow configures its logging.
    quiet = "airflow.providers.amazon=warning"
    levels = os.environ.get("AIRFLOW__LOGGING__NAMESPACE_LEVELS", "")
    os.environ["AIRFLOW__LOGGING__NAMESPACE_LEVELS"] = f"{levels} {quiet}".strip()
    from psycopg2 import Error as PostgresError

    from trilha.hooks.audit import AuditHook
    from trilha.hooks.minio import MinioHook

    audit = AuditHook(postgres_conn_id=args.postgres_conn_id)
    minio = MinioHook(aws_conn_id=args.aws_conn_id)
    try:
        options = parse_options(
            project=args.project,
            bucket=args.bucket,
            grace_minutes=args.grace_minutes,
            rehash=args.rehash,
            abandon_after_hours=args.abandon_after_hours,
        )
        run_id = (
            f"cli__{datetime.now(UTC).isoformat(timespec='seconds')}__{socket.gethostname()}_{os.getpid()}"
        )
        outcome = reconcile(
            audit, minio, run_id=run_id, buckets=configured_buckets(), options=options, say=lambda _m: None
        )
    except (ConnectionSetupError, ReconcileError) as err:
        print(f"trilha reconcile: {err}", file=sys.stderr)
        return 2
    except PostgresError as err:
        print(
            f"trilha reconcile: audit store (connection {args.postgres_conn_id!r}): {type(err).__name__}: "
            f"{str(err).strip()[:300]}",
            file=sys.stderr,
        )
        return 2
    except TrilhaError as err:
        print(f"trilha reconcile: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        if not minio.is_s3_error(err):
            raise
        print(f"trilha reconcile: S3: {minio.explain_error(err)}", file=sys.stderr)
        return 2
    finally:
        audit.close()
    if args.json:
        print(
            json.dumps(
                {**outcome.document(), "report": outcome.report_url, "report_sha256": outcome.report_sha256},
                indent=2,
                default=str,
            )
        )
    else:
        print(format_table(outcome))
    return 1 if outcome.drift_total else 0


if __name__ == "__main__":
    sys.exit(main())
