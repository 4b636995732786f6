#!/usr/bin/env bash
# Run yizhuang_nightly under a real Airflow 3 scheduler on this machine (docs/airflow-local.md):
# SQLite metadata + LocalExecutor, API server (UI + execution API), dag-processor, scheduler.
#
#   scripts/airflow_local.sh up               # migrate, create the pool, start the 3 components
#   scripts/airflow_local.sh run 2024-05-01   # trigger one run for a day, wait, print its time
#   scripts/airflow_local.sh backfill 2024-05-01 2024-05-03 [--reprocess-behavior completed]
#   scripts/airflow_local.sh status | down
#   eval "$(scripts/airflow_local.sh env)"    # then: uv run airflow dags list-runs yizhuang_nightly
#
# Reads the demo district (`uv run zwy demo`): data/sample/{inbox,registry} and writes
# data/warehouse/zwy.duckdb. Override with ZWY_DATA_DIR / ZWY_INBOX_DIR / ZWY_REGISTRY_DIR /
# ZWY_WAREHOUSE_PATH, the UI port with AIRFLOW_PORT (8080), the home with AIRFLOW_HOME
# (data/airflow). Set ZWY_AIRFLOW_CRON=1 to let the scheduler create the nightly 02:00 runs too.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DAG=yizhuang_nightly

abspath() { python3 -c 'import os,sys; print(os.path.abspath(sys.argv[1]))' "$1"; }
DATA=$(abspath "${ZWY_DATA_DIR:-data}")
export ZWY_DATA_DIR=$DATA
export ZWY_INBOX_DIR=$(abspath "${ZWY_INBOX_DIR:-$DATA/sample/inbox}")
export ZWY_REGISTRY_DIR=$(abspath "${ZWY_REGISTRY_DIR:-$DATA/sample/registry}")
export ZWY_WAREHOUSE_PATH=$(abspath "${ZWY_WAREHOUSE_PATH:-$DATA/warehouse/zwy.duckdb}")
export AIRFLOW_HOME=$(abspath "${AIRFLOW_HOME:-$DATA/airflow}")
PORT=${AIRFLOW_PORT:-8080}

export AIRFLOW__CORE__DAGS_FOLDER=$ROOT/dags
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sqlite:///$AIRFLOW_HOME/airflow.db
# 2 cores: a few task processes at once, one DAG parser, one API worker.
export AIRFLOW__CORE__PARALLELISM=${AIRFLOW__CORE__PARALLELISM:-4}
export AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG=$AIRFLOW__CORE__PARALLELISM
export AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES=1
export AIRFLOW__API__WORKERS=1
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT=$PORT
export AIRFLOW__API__BASE_URL=http://127.0.0.1:$PORT
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$PORT/execution/
# Tasks call the execution API; the default 5 s timeout fails first tasks on a busy 2-core box.
export AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT=30
# Local only (UI bound to 127.0.0.1): no login page, everyone is admin.
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True
if [[ "${ZWY_AIRFLOW_CRON:-0}" != 1 ]]; then
  # The demo's days are in 2024: without this, unpausing creates yesterday's run (catchup=False),
  # which finds no input and fails in check_arrivals ("nothing arrived"), as it should.
  export AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE=False
fi

AIRFLOW=$ROOT/.venv/bin/airflow
PY=$ROOT/.venv/bin/python
RUN=$AIRFLOW_HOME/run
LOGS=$AIRFLOW_HOME/logs/components
COMPONENTS=(api-server dag-processor scheduler)

ensure_venv() { [[ -x $AIRFLOW ]] || uv sync --locked -q; }
ensure_up() { alive scheduler || { echo "the scheduler is not running: $0 up" >&2; exit 1; }; }

meta() {  # meta SQL: one query on the SQLite metadata database, rows tab-separated
  "$PY" - "$AIRFLOW_HOME/airflow.db" "$1" <<'EOF'
import sqlite3, sys
con = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=30)
for row in con.execute(sys.argv[2]):
    print("\t".join("" if v is None else str(v) for v in row))
EOF
}

alive() { [[ -f $RUN/$1.pid ]] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

start() {  # start NAME ARGS...: own session (pgid = pid), pid file, log file
  local name=$1; shift
  if alive "$name"; then echo "$name already running (pid $(cat "$RUN/$name.pid"))"; return; fi
  setsid "$AIRFLOW" "$@" >>"$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! >"$RUN/$name.pid"
  echo "started $name (pid $!, log $LOGS/$name.log)"
}

stop() {  # stop NAME: SIGTERM to its process group, SIGKILL after 30 s
  local name=$1 pid
  alive "$name" || { rm -f "$RUN/$name.pid"; return; }
  pid=$(cat "$RUN/$name.pid")
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" || true; fi
  rm -f "$RUN/$name.pid"
  echo "stopped $name (pid $pid)"
}

wait_run() {  # wait_run RUN_ID: poll the run's state; print its duration
  local run_id=$1 state=""
  for _ in $(seq 720); do
    state=$(meta "SELECT state FROM dag_run WHERE dag_id='$DAG' AND run_id='$run_id'")
    [[ $state == success || $state == failed ]] && break
    sleep 5
  done
  meta "SELECT run_id, state, queued_at, start_date, end_date,
               round((julianday(end_date) - julianday(start_date)) * 86400, 1) AS run_s,
               round((julianday(end_date) - julianday(queued_at)) * 86400, 1) AS queued_to_end_s
        FROM dag_run WHERE dag_id='$DAG' AND run_id='$run_id'" |
    awk -F'\t' '{printf "%s: %s, %s s from start to end (%s s from queued)\n", $1, $2, $6, $7}'
  meta "SELECT task_id, state, round(duration, 1) FROM task_instance
        WHERE dag_id='$DAG' AND run_id='$run_id' ORDER BY start_date" | column -t
  [[ $state == success ]]
}

cmd=${1:-help}; shift || true
case $cmd in
  env)
    env | grep -E '^(AIRFLOW_HOME|AIRFLOW__|ZWY_)' | sort | sed 's/^/export /; s/=\(.*\)$/="\1"/'
    ;;
  up)
    ensure_venv
    if [[ ! -d $ZWY_INBOX_DIR ]]; then
      echo "no inbox at $ZWY_INBOX_DIR: run \`uv run zwy demo\` first (or set ZWY_INBOX_DIR)" >&2
      exit 1
    fi
    mkdir -p "$RUN" "$LOGS"
    "$AIRFLOW" db migrate >"$LOGS/db-migrate.log" 2>&1 || { tail -20 "$LOGS/db-migrate.log"; exit 1; }
    "$AIRFLOW" pools set zwy_duckdb_writer 1 "the single DuckDB writer" >/dev/null
    "$AIRFLOW" pools set zwy_parse 1 "parses take turns: each uses every core" >/dev/null
    start api-server api-server --host 127.0.0.1 --port "$PORT" --workers 1
    start dag-processor dag-processor
    start scheduler scheduler
    printf 'waiting for the API server'
    until curl -sf "http://127.0.0.1:$PORT/api/v2/monitor/health" >/dev/null; do
      alive api-server || { echo; tail -30 "$LOGS/api-server.log"; exit 1; }
      printf .; sleep 2
    done
    printf '\nwaiting for %s to be parsed' "$DAG"
    until [[ -n $(meta "SELECT dag_id FROM serialized_dag WHERE dag_id='$DAG'" 2>/dev/null) ]]; do
      printf .; sleep 2
    done
    echo
    "$AIRFLOW" dags unpause "$DAG" >/dev/null
    echo "UI: http://127.0.0.1:$PORT/dags/$DAG  (warehouse: $ZWY_WAREHOUSE_PATH)"
    ;;
  run)
    day=${1:?usage: $0 run YYYY-MM-DD}
    ensure_up
    run_id="manual_${day}_$(date +%H%M%S)"
    "$AIRFLOW" dags trigger "$DAG" -c "{\"day\": \"$day\"}" -r "$run_id" >/dev/null
    echo "triggered $run_id"
    wait_run "$run_id"
    ;;
  backfill)
    first=${1:?usage: $0 backfill FIRST_DAY LAST_DAY [extra flags]}; last=${2:?}; shift 2
    ensure_up
    # Logical date = data interval start = 02:00 Shanghai of the day processed.
    # SQLite: a command that read before the scheduler wrote gets "database is locked" at once;
    # Airflow then removes the partial backfill so that it can be retried. When that clean-up
    # met the lock too, the failed backfill (without runs) stays until the scheduler marks it
    # complete, and blocks a new one: wait for that, then retry (as tests/airflow do).
    before=$(meta "SELECT coalesce(max(id), 0) FROM backfill")
    for attempt in 1 2 3 4; do
      if out=$("$AIRFLOW" backfill create --dag-id "$DAG" \
          --from-date "${first}T02:00:00+08:00" --to-date "${last}T02:00:00+08:00" "$@" 2>&1); then
        echo "$out"; break
      fi
      if [[ $out != *"database is locked"* || $attempt == 4 ]]; then echo "$out" >&2; exit 1; fi
      for orphan in $(meta "SELECT id FROM backfill WHERE id > $before"); do
        runs=$(meta "SELECT count(*) FROM dag_run WHERE backfill_id = $orphan")
        if [[ $runs != 0 ]]; then
          echo "backfill $orphan was created with $runs run(s) before the error: not retrying" >&2
          exit 1
        fi
        echo "waiting for the failed backfill $orphan (no runs) to be marked complete" >&2
        for _ in $(seq 45); do
          [[ -n $(meta "SELECT completed_at FROM backfill WHERE id = $orphan") ]] && break
          sleep 2
        done
        before=$orphan
      done
      echo "the metadata database is busy (SQLite): retrying in 5 s" >&2; sleep 5
    done
    ;;
  status)
    for c in "${COMPONENTS[@]}"; do
      if alive "$c"; then echo "$c: running (pid $(cat "$RUN/$c.pid"))"; else echo "$c: stopped"; fi
    done
    [[ -f $AIRFLOW_HOME/airflow.db ]] && meta "SELECT run_id, run_type, state, start_date, end_date
      FROM dag_run WHERE dag_id='$DAG' ORDER BY id DESC LIMIT 10" | column -t -s $'\t'
    ;;
  down)
    for c in scheduler dag-processor api-server; do stop "$c"; done
    ;;
  *)
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    ;;
esac
