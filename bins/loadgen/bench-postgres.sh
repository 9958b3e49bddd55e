#!/usr/bin/env bash
# PostgreSQL rounds, side by side with SQLite in one run on this machine:
# PostgreSQL is installed if missing and started here (fsync on, default
# synchronous_commit), on loopback without TLS. Rounds, each on a fresh
# database (or a fresh SQLite store), 1 KB Segment track events, each
# planning one trigger run by the `local` sink:
#   sqlite       one ingest process on SQLite (the single-node figure);
#   pg-one       one ingest process on PostgreSQL, workers in it;
#   pg-two       two ingest replicas on one database, each driven by its own
#                load generator with half the connections (events/s summed);
#   pg-two-delay pg-two with `commit_delay = 100` and `commit_siblings = 2`
#                (concurrent commits share a WAL flush), for that round only;
#                run only when PG_ROUNDS names it;
#   pg-split     an ingest-only process (`[workers] enabled = false`) and a
#                second process running only the workers on the same database;
#   pg-lz4       pg-one with `wal_compression = lz4` (the full-page images
#                after each checkpoint compressed), set for that round only;
#   pg-tuned     pg-lz4 with `max_wal_size = 4GB` as well (checkpoints, and
#                so full-page images, less often), for that round only.
# Each round reports events/s at full speed, answered and with their actions
# run (after the run it waits for the outbox to drain and adds that time),
# then p99 at a fixed 5,000 events/s (split over the replicas), and the
# bytes per event dirtied by the ingest processes and by PostgreSQL's
# (from /proc/PID/io; at full speed, the drain's included) and taken by
# the block device (the figure to trust on a quiet machine: /proc/PID/io
# counts a whole large folio for a small write, as bench-lib.sh explains),
# and the CPU time per event of each (from /proc/PID/stat).
# PG_ROUNDS names the rounds to run (default: all of
# "sqlite one lz4 tuned two split"); PG_STATEMENTS=1 also prints, after
# each PostgreSQL round, the statements that took the most time in it
# (pg_stat_statements, loaded for the run). INGEST_BIN=path runs that
# build of tributary-ingest instead. PG_WALSTATS=1 also breaks down, after
# each PostgreSQL round at full speed, the WAL it wrote (by record kind, by
# table or index, and the full-page images' share) and the data-file pages
# PostgreSQL wrote; it keeps the run's WAL until the breakdown is read.
# PG_LOCALE=name creates each round's database with that locale (for
# example en_US.UTF-8, as many hosted and distribution-made clusters have;
# the system must have it, see `locale -a`) instead of the cluster's "C".
# Usage: bash bins/loadgen/bench-postgres.sh [seconds] [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS="${1:-10}"
ROUNDS="${2:-1}"
cargo build --release -q -p tributary-ingest -p tributary-loadgen
BIN=target/release
source bins/loadgen/bench-lib.sh
WORK="$(mktemp -d)"
# PostgreSQL runs as its own unprivileged user, which must reach its directory.
chmod 755 "$WORK"
PG_ROOT="$WORK/pg"
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  if [ -f "$PG_ROOT/data/postmaster.pid" ]; then
    runuser -u "$(stat -c %U "$PG_ROOT/data")" -- "$(dirname "$(ls -d /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -n 1)")/pg_ctl" \
      -D "$PG_ROOT/data" -m immediate stop >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== PostgreSQL databases' locale: ${PG_LOCALE:-C}"
# The CI helper starts a throwaway cluster; its URL is re-pointed at each round's database.
(
  export CI=true TRIBUTARY_PG_PORT=55700 TRIBUTARY_PG_ROOT="$PG_ROOT"
  source .ci/setup-postgres.sh >/dev/null
)
PG_BIN="$(dirname "$(ls -d /usr/lib/postgresql/*/bin/psql | sort -V | tail -n 1)")"
export PGOPTIONS="-c client_min_messages=warning"
PSQL=("$PG_BIN/psql" -h 127.0.0.1 -p 55700 -U postgres -v ON_ERROR_STOP=1 -q)

TOKEN=tok_bench_0123456789abcdefghij
body() { # name workers
  printf '[workers]\nenabled = %s\n' "$2"
  bench_sources
}
start() { # name port store-toml workers
  { printf '[server]\nlisten = "127.0.0.1:%s"\n%s\n' "$2" "$3"; body "$1" "$4"; } > "$WORK/$1.toml"
  RUST_LOG=warn "${INGEST_BIN:-$BIN/tributary-ingest}" --config "$WORK/$1.toml" >"$WORK/$1.log" 2>&1 &
  echo $! > "$WORK/$1.pid"
  until curl -sf "http://127.0.0.1:$2/healthz" >/dev/null; do sleep 0.01; done
}
stop() { local pid; pid=$(cat "$WORK/$1.pid"); kill "$pid"; wait "$pid" 2>/dev/null || true; }
written() { # pids...: write_bytes summed
  local sum=0 p
  for p in "$@"; do sum=$((sum + $(awk '/^write_bytes:/ {print $2}' "/proc/$p/io" 2>/dev/null || echo 0))); done
  echo "$sum"
}
pg_pids() { pgrep -u "$(stat -c %U "$PG_ROOT/data")" postgres | tr '\n' ' '; }
ticks() { # pids...: "pid ticks" per line
  local p
  for p in "$@"; do echo "$p $(cpu_ticks "$p" 2>/dev/null || echo 0)"; done
}
ticks_since() { # file of ticks, pids...: CPU ticks used since, a pid not in the file from 0
  ticks "${@:2}" | awk 'NR == FNR {t[$1] = $2; next} {s += $2 - t[$1]} END {print s + 0}' "$1" -
}
fresh_db() {
  "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS bench_$1" \
    -c "CREATE DATABASE bench_$1${PG_LOCALE:+ TEMPLATE template0 LOCALE '$PG_LOCALE'}"
}
# Server settings for one round (ALTER SYSTEM, then a reload; none of them
# needs a restart), and back to the defaults.
pg_settings() { # "name = value" ...
  local s; for s in "$@"; do "${PSQL[@]}" -d postgres -c "ALTER SYSTEM SET $s"; done
  "${PSQL[@]}" -d postgres -c "SELECT pg_reload_conf()" >/dev/null
}
pg_defaults() {
  "${PSQL[@]}" -d postgres -c "ALTER SYSTEM RESET ALL"
  # The breakdown reads the run's WAL after it, so none may be recycled before.
  if [ "${PG_WALSTATS:-0}" = 1 ]; then "${PSQL[@]}" -d postgres -c "ALTER SYSTEM SET wal_keep_size = '16GB'"; fi
  "${PSQL[@]}" -d postgres -c "SELECT pg_reload_conf()" >/dev/null
}
pg_store() { printf '[store]\nbackend = "postgres"\nurl = "postgres://postgres@127.0.0.1:55700/bench_%s?sslmode=disable"\n' "$1"; }
# Runs the load on the ports given (connections split over them) and prints
# events/s, p99 and the bytes written per event by the ingest processes
# (the names given) and by PostgreSQL's. At full speed it then waits for
# the outbox of the processes on "metrics ports" (those given when absent)
# to drain, and also prints events/s with their actions run.
# Every load generator of the script sends messageIds of its own (from
# FIRST on), so no event is answered as a duplicate of an earlier run's or
# of the other replica's.
FIRST=0
load() { # label rate(- for full speed) "port ..." "name ..." ["metrics port ..."]
  local label=$1 rate=$2 ports=($3) names=($4) pids=() loaders=() i=0
  local n=${#ports[@]}
  for name in "${names[@]}"; do pids+=("$(cat "$WORK/$name.pid")"); done
  local pg0 in0 dev0; pg0=$(written $(pg_pids)); in0=$(written "${pids[@]}"); dev0=$(device_sectors "$WORK")
  local wal0="" pages0=""
  if [ "${PG_WALSTATS:-0}" = 1 ] && [ "$rate" = "-" ] && [ -n "${WAL_DB:-}" ]; then
    wal0=$(pg_value "SELECT pg_current_wal_insert_lsn()"); pages0=$(pg_value "$PAGES_WRITTEN")
  fi
  ticks $(pg_pids) > "$WORK/pg-ticks"; ticks "${pids[@]}" > "$WORK/ingest-ticks"
  for p in "${ports[@]}"; do
    local r=(); [ "$rate" != "-" ] && r=(--rate $((rate / n)))
    "$BIN/tributary-loadgen" run --url "http://127.0.0.1:$p/integrations/receive/$TOKEN" --connections $((64 / n)) --seconds "$SECS" "${r[@]}" --first "$FIRST" > "$WORK/out-$i" &
    FIRST=$((FIRST + 100000000))
    loaders+=($!); i=$((i + 1))
  done
  wait "${loaders[@]}"
  local drained=""
  if [ "$rate" = "-" ]; then
    local drain; drain=$(outbox_drain "${5:-$3}")
    drained=", $(done_rate "$SECS" "$drain" "$WORK"/out-*) with their actions run (outbox empty $drain s after the run)"
  fi
  local pg1 in1 dev1; pg1=$(written $(pg_pids)); in1=$(written "${pids[@]}"); dev1=$(device_sectors "$WORK")
  # Backends that started and ended within the run are left out of the CPU figure.
  local pgc inc; pgc=$(ticks_since "$WORK/pg-ticks" $(pg_pids)); inc=$(ticks_since "$WORK/ingest-ticks" "${pids[@]}")
  local events; events=$(cat "$WORK"/out-* | awk '/^events in 2xx answers:/ {s += $5} END {print (s > 0 ? s : 1)}')
  local sum; sum=$(cat "$WORK"/out-* | awk '/^throughput:/ {s += $2} END {printf "%d", s}')
  local p99; p99=$(cat "$WORK"/out-* | awk '/^latency:/ {gsub(",", ""); print $6}' | sort -n | tail -1)
  local hz; hz=$(getconf CLK_TCK)
  local cpu; cpu=$(awk -v p="$pgc" -v i="$inc" -v e="$events" -v hz="$hz" \
    'BEGIN {printf "PostgreSQL %.0f, ingest %.0f", p / hz / e * 1e6, i / hz / e * 1e6}')
  echo "$label: $sum events/s answered$drained, p99 $p99 ms (the worse load generator's), bytes per event: dirtied by ingest $(( (in1 - in0) / events )) and PostgreSQL $(( (pg1 - pg0) / events )), taken by the device $(( (dev1 - dev0) * 512 / events )); CPU µs per event: $cpu"
  if [ -n "$wal0" ]; then
    wal_breakdown "$wal0" "$(pg_value "SELECT pg_current_wal_insert_lsn()")" "$events" \
      $(( ($(pg_value "$PAGES_WRITTEN") - pages0) * 8192 / events ))
  fi
  rm -f "$WORK"/out-*
}

pg_value() { "${PSQL[@]}" -d postgres -At -c "$1"; }
PAGES_WRITTEN="SELECT buffers_checkpoint + buffers_clean + buffers_backend FROM pg_stat_bgwriter"
# The WAL between two positions, per event: by record kind, and by the
# table or index of each record's first block (database $WAL_DB).
wal_breakdown() { # start-lsn end-lsn events data-file-bytes-per-event
  local owner; owner=$(stat -c %U "$PG_ROOT/data")
  echo "  WAL $(pg_value "SELECT (pg_wal_lsn_diff('$2', '$1') / $3)::int") bytes per event; data-file pages written by PostgreSQL: $4 bytes per event"
  runuser -u "$owner" -- "$PG_BIN/pg_waldump" -p "$PG_ROOT/data/pg_wal" -s "$1" -e "$2" --stats=record 2>/dev/null \
    | awk -v e="$3" '{ gsub(/\([^)]*\)|\[[^]]*\]/, "") }
        NF == 5 && $2 ~ /^[0-9]+$/ && $1 != "Total" {
          printf "  %-32s %8.2f records/event %8.0f B/event, of which full-page images %8.0f\n", $1, $2 / e, $5 / e, $4 / e }' \
    | sort -k4 -n -r | head -8
  "${PSQL[@]}" -d "bench_$WAL_DB" -At -F ' ' -c "SELECT pg_relation_filenode(oid), relname FROM pg_class WHERE pg_relation_filenode(oid) IS NOT NULL" > "$WORK/relnames"
  runuser -u "$owner" -- "$PG_BIN/pg_waldump" -p "$PG_ROOT/data/pg_wal" -s "$1" -e "$2" 2>/dev/null \
    | awk -v e="$3" 'NR == FNR {name[$1] = $2; next}
        { tot = $0; sub(/.*len \(rec\/tot\): *[0-9]+\/ */, "", tot); tot += 0
          rel = "(none)"
          if (match($0, /blkref #0: rel [0-9]+\/[0-9]+\/[0-9]+/)) {
            split(substr($0, RSTART + 16, RLENGTH - 16), part, "/"); rel = (part[3] in name) ? name[part[3]] : "relfilenode " part[3] }
          bytes[rel] += tot; if ($0 ~ /FPW/) fpw[rel] += tot }
        END { for (r in bytes) printf "  %-32s %8.0f B/event, in records with a full-page image %8.0f\n", r, bytes[r] / e, fpw[r] / e }' \
      "$WORK/relnames" - | sort -k2 -n -r | head -12
}

PG_ROUNDS="${PG_ROUNDS:-sqlite one lz4 tuned two split}"
pg_defaults
runs() { [[ " $PG_ROUNDS " == *" $1 "* ]]; }
if [ "${PG_STATEMENTS:-0}" = 1 ]; then
  "${PSQL[@]}" -d postgres -c "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"
  runuser -u "$(stat -c %U "$PG_ROOT/data")" -- "$PG_BIN/pg_ctl" -D "$PG_ROOT/data" -w restart -m fast >/dev/null
fi
# The statements that took the most time in database $1 since its creation.
statements() {
  [ "${PG_STATEMENTS:-0}" = 1 ] || return 0
  "${PSQL[@]}" -d "bench_$1" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
  "${PSQL[@]}" -d "bench_$1" -P pager=off -c "SELECT calls, round(total_exec_time) AS ms, \
      round((total_exec_time / calls)::numeric, 3) AS ms_per_call, rows, left(regexp_replace(query, '\s+', ' ', 'g'), 110) AS statement \
    FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = 'bench_$1' \
    ORDER BY total_exec_time DESC LIMIT 12"
}

# Before a round, what the last one left dirty goes to disk (PostgreSQL's
# buffers by a checkpoint, the page cache by sync), so no round's writes are
# flushed during the next one's.
quiesce() { "${PSQL[@]}" -d postgres -c "CHECKPOINT"; sync; }

for round in $(seq "$ROUNDS"); do
  echo "== round $round of $ROUNDS"
  if runs sqlite; then
  WAL_DB=""
  quiesce
  start "sqlite-$round" 9301 "$(printf '[store]\npath = "%s"' "$WORK/sqlite-$round")" true
  load "sqlite full speed" - 9301 "sqlite-$round"
  load "sqlite at 5,000/s" 5000 9301 "sqlite-$round"
  stop "sqlite-$round"; rm -rf "$WORK/sqlite-$round"
  fi

  # The single-replica rounds each start right after a checkpoint, so each
  # meets the next one at the same point.
  for variant in one lz4 tuned; do
    runs $variant || continue
    case $variant in
      lz4) pg_settings "wal_compression = 'lz4'" ;;
      tuned) pg_settings "wal_compression = 'lz4'" "max_wal_size = '4GB'" ;;
    esac
    fresh_db "${variant}_$round"; WAL_DB="${variant}_$round"
    quiesce
    start "pg-$variant-$round" 9302 "$(pg_store "${variant}_$round")" true
    load "pg-$variant full speed" - 9302 "pg-$variant-$round"
    load "pg-$variant at 5,000/s" 5000 9302 "pg-$variant-$round"
    stop "pg-$variant-$round"
    statements "${variant}_$round"
    pg_defaults
  done

  for variant in two two-delay; do
    runs $variant || continue
    [ $variant = two-delay ] && pg_settings "commit_delay = 100" "commit_siblings = 2"
    db="${variant/-/_}_$round"
    fresh_db "$db"; WAL_DB="$db"
    quiesce
    start "pg-$variant-a-$round" 9303 "$(pg_store "$db")" true
    start "pg-$variant-b-$round" 9304 "$(pg_store "$db")" true
    load "pg-$variant full speed" - "9303 9304" "pg-$variant-a-$round pg-$variant-b-$round"
    load "pg-$variant at 5,000/s" 5000 "9303 9304" "pg-$variant-a-$round pg-$variant-b-$round"
    stop "pg-$variant-a-$round"; stop "pg-$variant-b-$round"
    statements "$db"
    pg_defaults
  done

  if runs split; then
  fresh_db "split_$round"; WAL_DB="split_$round"
  quiesce
  start "pg-split-ingest-$round" 9305 "$(pg_store "split_$round")" false
  start "pg-split-workers-$round" 9306 "$(pg_store "split_$round")" true
  load "pg-split full speed" - 9305 "pg-split-ingest-$round pg-split-workers-$round" "9305 9306"
  load "pg-split at 5,000/s" 5000 9305 "pg-split-ingest-$round pg-split-workers-$round"
  stop "pg-split-ingest-$round"; stop "pg-split-workers-$round"
  echo "actions still pending in the split round's database: $("${PSQL[@]}" -d "bench_split_$round" -t -c "SELECT count(*) FROM outbox" | xargs)"
  statements "split_$round"
  fi
done
