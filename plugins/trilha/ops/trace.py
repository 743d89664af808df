"""Trace any file end to end, and summarise what the lake holds for a project.

``python -m trilha.ops.trace <file name | key | sha256 | Drive id | local path>`` prints the file's path
so far: source → reception key → stored key → staged → curated → dataset versions, with the run ids
that moved it and when. ``python -m trilha.ops.trace summary --project NAME`` prints files and rows per
layer, quarantined rows, the latest versions and where to look; ``summary`` (with or without a
project) also prints the latest reconcile report of each bucket (``meta.reconcile_report``). Both
read the audit store through the ``trilha_postgres`` connection (``AIRFLOW_CONN_TRILHA_POSTGRES``
locally).

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
    """Files and rows per layer of ``project``, its latest versions, and its rejections."""
    return {
        "counts": audit.project_summary(project),
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
    parser.add_argument("query", help="file name, object key, sha256, Drive id or local path; or 'summary'")
    parser.add_argument(
        "--project", help="with 'summary': the project name (default: the reconcile state only)"
    )
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


if __name__ == "__main__":
    sys.exit(main())
