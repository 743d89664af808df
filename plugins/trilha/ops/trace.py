"""Trace any file end to end, and summarise what the lake holds for a project.

``python -m trilha.ops.trace <file name | key | sha256 | Drive id | local path>`` prints the file's path
so far: source → reception key → stored key → staged → curated → dataset versions, with the run ids
that moved it and when. ``python -m trilha.ops.trace summary --project NAME`` prints files and rows per
layer, quarantined rows, the latest versions and where to look; ``summary`` (with or without a
project) also prints the latest reconcile report of each bucket (``meta.reconcile_report``). Both
read the audit store through the ``trilha_postgres`` connection (``AIRFLOW_CONN_TRILHA_POSTGRES``
locally).

``python -m trilha.ops.trace version --project NAME --dataset DATASET [--version v0001] [--table hourly]
[--head N]`` is time travel: the curated version's tables, each with the Iceberg snapshot the version
recorded (identifier, snapshot id, rows, partitions rewritten, the staged inputs it added and
removed), and with ``--head`` the first rows of ``--table`` read at that snapshot through the
catalog (also through ``trilha_minio``). Any engine can read the same snapshot by its id.

Library use: :func:`trace` and :func:`summary` take an :class:`~trilha.hooks.audit.AuditHook`.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from trilha import config
from trilha.exceptions import TrilhaError

if TYPE_CHECKING:
    from trilha.hooks.audit import AuditHook


def trace(audit: AuditHook, query: str) -> list[dict[str, Any]]:
    """Every recorded event of the content(s) that ``query`` names, oldest first per content."""
    shas = audit.contents_named(query)
    if not shas:
        return []
    return audit.content_events(shas)


def summary(audit: AuditHook, project: str) -> dict[str, Any]:
    """Files and rows per layer of ``project``, the layouts detected, its latest versions, and its
    rejections."""
    return {
        "counts": audit.project_summary(project),
        "layouts": audit.project_layouts(project),
        "versions": audit.project_versions(project),
        "rejections": audit.project_rejections(project),
    }


def latest_reconcile(audit: AuditHook, project_prefix: str | None = None) -> list[dict[str, Any]]:
    """The latest reconcile report row of each bucket (that covered ``project_prefix``, if given)."""
    return audit.latest_reconcile_reports(project_prefix)


def format_reconcile(rows: list[dict[str, Any]]) -> str:
    """The latest reconcile report per bucket: when, counts, drift total and the report object."""
    if not rows:
        return "Reconcile: never reconciled (run the reconcile DAG, or python -m trilha.ops.reconcile)"
    out = ["Reconcile (latest report per bucket):"]
    for r in rows:
        when = r["checked_at"].isoformat(timespec="seconds")
        counts = r["counts"] if isinstance(r["counts"], dict) else {}
        shown = " ".join(
            f"{k} {counts.get(k, 0)}"
            for k in ("match", "missing_in_lake", "missing_in_audit", "differ", "pending")
        )
        scope = f"project {r['project_prefix']}" if r["project_prefix"] else "every project"
        state = "no drift" if not r["drift_total"] else f"DRIFT {r['drift_total']}"
        out.append(f"  {r['bucket']:<22} {when}  {state:<10} {shown}  ({scope})")
        out.append(f"  {'':<22} report s3://{r['report_bucket']}/{r['report_key']}")
    return "\n".join(out)


def version_tables(
    audit: AuditHook,
    project: str,
    dataset: str,
    version: str | None,
    iceberg: Any = None,
) -> dict[str, Any] | None:
    """Curated version ``version`` (``None``: the latest) of a project's dataset, with each table's
    snapshot summary read from the catalog (``iceberg``: an :class:`~trilha.hooks.iceberg.IcebergHook`);
    ``None`` when there is no such version."""
    cur = audit.curated_version(project, dataset, version)
    if cur is None:
        return None
    out = {"version": cur["version"], "table_format": cur["table_format"], "tables": {}, "row": cur}
    for name, t in sorted((cur["tables"] or {}).items()):
        entry = dict(t)
        if iceberg is not None:
            namespace, table = str(t["identifier"]).split(".", 1)
            entry["summary"] = iceberg.snapshot_summary((namespace, table), int(t["snapshot_id"]))
        out["tables"][name] = entry
    return out


def format_version(project: str, dataset: str, data: dict[str, Any] | None, head: Any = None) -> str:
    """The tables of a curated version and their snapshots; ``head``: rows read at one of them."""
    import json

    if data is None:
        return f"project {project!r}: no curated version of {dataset!r} with that name"
    out = [f"{project} {dataset} {data['version']} ({data['table_format']})"]
    if data["table_format"] != "iceberg":
        out.append("  a v0001-style version: Parquet files listed by its manifest")
        for name, f in sorted(data["row"]["files"].items()):
            out.append(f"  {name:<14} s3://{data['row']['bucket']}/{f['key']}  rows {f['rows']}")
        return "\n".join(out)
    for name, t in data["tables"].items():
        out.append(
            f"  {name:<14} {t['identifier']}  snapshot {t['snapshot_id']}  rows {t['rows']}  "
            f"partitions rewritten {t['partitions_rewritten']}"
        )
        summary = t.get("summary") or {}
        if summary:
            added = json.loads(summary.get("trilha.inputs-added", "[]"))
            removed = json.loads(summary.get("trilha.inputs-removed", "[]"))
            out.append(
                f"  {'':<14} inputs added {len(added)}, removed {len(removed)}; {t['metadata_location']}"
            )
    if head is not None:
        out.append(str(head))
    return "\n".join(out)


def format_trace(query: str, events: list[dict[str, Any]]) -> str:
    if not events:
        return f"{query}: no record in the audit store (check the spelling, or run raw_ingest first)"
    lines = []
    current = None
    for ev in events:
        if ev["sha256"] != current:
            current = ev["sha256"]
            lines.append(f"content sha256 {current}")
        when = ev["at"].isoformat(timespec="seconds") if ev["at"] else "?"
        source = f"  <- {ev['source']}" if ev.get("source") else ""
        lines.append(f"  {ev['layer']:<23} {ev['bucket']}/{ev['key']}  [{ev['detail']}]{source}")
        lines.append(f"  {'':<23} at {when}  run {ev['run_id']}")
    return "\n".join(lines)


def format_summary(project: str, data: dict[str, Any]) -> str:
    c = data["counts"]
    if not c.get("project"):
        return f"project {project!r}: not registered"
    out = [
        f"Project {c['project']} (prefix {c['prefix']})",
        f"  reception objects   {c['reception_objects']:>10}   rejected {c['reception_rejected']}",
        f"  stored files        {c['stored_files']:>10}   {int(c['stored_bytes']) / 1e6:.1f} MB",
        f"  staged files        {c['staged_files']:>10}   rejected files {c['staging_rejected_files']}",
        f"  rows in / staged    {c['rows_in']:>10} / {c['rows_staged']}",
        f"  rows quarantined    {c['rows_quarantined']:>10}",
    ]
    for n, lay in enumerate(data.get("layouts") or ()):
        label = "layouts detected" if n == 0 else ""
        out.append(
            f"  {label:<19} {lay['layout']} ({lay['dataset']}): {lay['files']} file(s), {lay['rows']} rows"
        )
    if data["versions"]:
        out.append("  versions (newest first):")
        for v in data["versions"][:6]:
            where = f"s3://{v['bucket']}/{v['prefix']}/"
            out.append(f"    {v['kind']:<8} {v['dataset']} {v['version']}  rows {v['rows']}  {where}")
    if data["rejections"]:
        out.append("  rejections and quarantines:")
        for r in data["rejections"]:
            out.append(f"    {r['source_key']}: {str(r['reason'])[:160]}")
    out.append("  trace a file:  python -m trilha.ops.trace '<file name, key or sha256>'")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trilha.ops.trace", description=__doc__.split("\n")[0])
    parser.add_argument(
        "query", help="file name, object key, sha256, Drive id or local path; or 'summary' or 'version'"
    )
    parser.add_argument(
        "--project",
        help="with 'summary': the project name (default: the reconcile state only); with 'version': required",
    )
    parser.add_argument("--dataset", default="inmet_hourly", help="with 'version': the curated dataset")
    parser.add_argument(
        "--version", dest="curated_version", help="with 'version': v0001... (default: the latest)"
    )
    parser.add_argument("--table", default="hourly", help="with 'version' and --head: the table to read")
    parser.add_argument("--head", type=int, default=0, help="with 'version': print the table's first N rows")
    parser.add_argument("--aws-conn-id", default=config.S3_CONN_ID)
    parser.add_argument("--conn-id", default=config.POSTGRES_CONN_ID)
    args = parser.parse_args(argv)
    from trilha.hooks.audit import AuditHook

    audit = AuditHook(postgres_conn_id=args.conn_id)
    try:
        return _run(args, parser, audit)
    except TrilhaError as err:
        print(f"trilha trace: {err}", file=sys.stderr)
        return 2
    finally:
        audit.close()


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser, audit: AuditHook) -> int:
    if args.query == "version":
        return _version(args, parser, audit)
    if args.query == "summary":
        prefix = None
        if args.project:
            data = summary(audit, args.project)
            print(format_summary(args.project, data))
            prefix = data["counts"].get("prefix")
        print(format_reconcile(latest_reconcile(audit, prefix)))
        return 0
    events = trace(audit, args.query)
    print(format_trace(args.query, events))
    return 0 if events else 1


def _version(args: argparse.Namespace, parser: argparse.ArgumentParser, audit: AuditHook) -> int:
    from trilha.hooks.iceberg import IcebergHook

    if not args.project:
        parser.error("version: --project is required")
    iceberg = IcebergHook(postgres_conn_id=args.conn_id, aws_conn_id=args.aws_conn_id)
    try:
        data = version_tables(audit, args.project, args.dataset, args.curated_version, iceberg)
        head = None
        if data is not None and args.head and data["table_format"] == "iceberg":
            if args.table not in data["tables"]:
                parser.error(f"--table: expected one of {sorted(data['tables'])}, got {args.table!r}")
            t = data["tables"][args.table]
            namespace, name = str(t["identifier"]).split(".", 1)
            batch = next(iceberg.batches((namespace, name), int(t["snapshot_id"])), None)
            head = batch.slice(0, args.head).to_pandas().to_string() if batch is not None else "(no rows)"
    finally:
        iceberg.close()
    print(format_version(args.project, args.dataset, data, head))
    return 0 if data is not None else 1


if __name__ == "__main__":
    sys.exit(main())
