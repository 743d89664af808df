#!/usr/bin/env bash
# Runs the seven DAGs in order through `airflow dags test` on a folder of input files, then prints a
# summary. Called by `make demo` after the local stack is up and its env file is sourced.
# `python -m trilha.ops.ui dags-test` is `airflow dags test` that also writes each task's log where the
# Airflow UI reads it (`make ui` shows these runs with their logs).
#   scripts/demo.sh <input folder> <project name>
set -euo pipefail
INPUT=$(cd "${1:?usage: demo.sh <input folder> <project>}" && pwd)
PROJECT=${2:?usage: demo.sh <input folder> <project>}
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN="$HERE/.venv/bin"
PREFIX=$("$BIN/python" -c 'import re,sys; print(re.sub(r"[^a-z0-9_-]+", "-", sys.argv[1].lower()).strip("-_")[:63] or "project")' "$PROJECT")
LOGS="${TRILHA_STATE_DIR:-$HERE/.trilha}/demo-logs"
mkdir -p "$LOGS"
CONF_PROJECT=$("$BIN/python" -c 'import json,sys; print(json.dumps({"project": sys.argv[1]}))' "$PROJECT")

run() {
  local dag=$1 conf=$2 log="$LOGS/$1.log"
  printf '%-18s ' "$dag"
  local start=$SECONDS
  if ! "$BIN/python" -m trilha.ops.ui dags-test "$dag" -c "$conf" >"$log" 2>&1 || ! grep -q "state=success" "$log"; then
    echo "FAILED (log: $log)"
    grep -E "ERROR|Error|error" "$log" | grep -v "^\s*$" | tail -5 || true
    exit 1
  fi
  echo "ok  $((SECONDS - start))s  $(grep -o "summary: {.*}" "$log" | tail -1 | cut -c10-200)"
}

echo "Trilha demo: project '$PROJECT' (prefix '$PREFIX') from $INPUT"
run drive_capture "$("$BIN/python" -c 'import json,sys; print(json.dumps({"source": sys.argv[1], "project": sys.argv[2], "project_prefix": sys.argv[3]}))' "$INPUT" "$PROJECT" "$PREFIX")"
run raw_ingest '{}'
run reception_promote "$CONF_PROJECT"
run staging "$CONF_PROJECT"
run curated "$CONF_PROJECT"
run dataset_split "$CONF_PROJECT"
run reception_cleanup '{"dry_run": true}'
echo
"$BIN/python" -m trilha.ops.trace summary --project "$PROJECT"
STATE_DIR="${TRILHA_STATE_DIR:-$HERE/.trilha}"
echo
echo "Objects are plain files under $STATE_DIR/s3/<bucket>/ (the s3:// paths above)."
echo "DAG logs: $LOGS/ and in the Airflow UI (make ui)   Audit store: psql \"\$($BIN/python -m trilha.ops.devstack dsn)\"   Stop: make down"
