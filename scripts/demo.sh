#!/usr/bin/env bash
# Runs the seven DAGs in order on a folder of input files, in ONE Python process (one Airflow start-up:
# `python -m trilha.ops.run`, dag.test() per DAG with asset events handed on), then prints a summary.
# Called by `make demo` after the local stack is up and its env file is sourced. Each task's log is
# written where the Airflow UI reads it (`make ui` shows these runs with their logs).
#   scripts/demo.sh <input folder> <project name>
set -euo pipefail
INPUT=$(cd "${1:?usage: demo.sh <input folder> <project>}" && pwd)
PROJECT=${2:?usage: demo.sh <input folder> <project>}
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN="$HERE/.venv/bin"
STATE_DIR="${TRILHA_STATE_DIR:-$HERE/.trilha}"
PREFIX=$("$BIN/python" -c 'import re,sys; print(re.sub(r"[^a-z0-9_-]+", "-", sys.argv[1].lower()).strip("-_")[:63] or "project")' "$PROJECT")
json() { "$BIN/python" -c 'import json,sys; it=iter(sys.argv[1:]); print(json.dumps(dict(zip(it, it))))' "$@"; }

echo "Trilha demo: project '$PROJECT' (prefix '$PREFIX') from $INPUT"
"$BIN/python" -m trilha.ops.run \
  drive_capture raw_ingest reception_promote staging curated dataset_split reception_cleanup \
  --conf "$(json project "$PROJECT")" \
  --conf-for "drive_capture=$(json source "$INPUT" project_prefix "$PREFIX")" \
  --conf-for 'reception_cleanup={"dry_run": true}' \
  --log "$STATE_DIR/demo-logs/run.log"
echo
"$BIN/python" -m trilha.ops.trace summary --project "$PROJECT"
STATE_ARG="" DSN="$BIN/python -m trilha.ops.devstack dsn"
if [ "$STATE_DIR" != "$HERE/.trilha" ]; then
  # Not the default stack: every command below must name it, or it would reach .trilha's.
  STATE_ARG=" STATE=$STATE_DIR" DSN="$DSN --state-dir $STATE_DIR"
fi
echo
echo "Objects are plain files under $STATE_DIR/s3/<bucket>/ (the s3:// paths above)."
echo "Airflow console log: $STATE_DIR/demo-logs/run.log; task logs in the Airflow UI (make ui$STATE_ARG)."
echo "Trace a file: set -a; . $STATE_DIR/env; set +a; $BIN/python -m trilha.ops.trace '<file name, key or sha256>'"
echo "Audit store: psql \"\$($DSN)\"   Stop: make down$STATE_ARG"
