#!/usr/bin/env bash
# A/B of the ingest service between a git revision and the working tree, side
# by side in one run on this machine: the two builds alternate for [rounds]
# rounds of [seconds] at full speed (64 connections, single events on a
# receive URL, SQLite with fsync on), each round on a fresh store, and the
# script prints each round's events/s and the server's CPU per event, and the
# median ratios this tree / REV of both. Events/s counts the events whose
# actions have run: after each run the script waits for the outbox to drain
# and adds that time (and the CPU and bytes it took) to the run's.
# The configuration has no mappings, so both builds do the same work whatever
# their mapping engines plan: it measures the request path (HTTP, adapter,
# dedup, group-committed append). With AB_SOURCES=bench the builds run the
# benchmarks' source instead (one trigger per event, run by the workers, as
# in bench-ingest.sh), and with RATE each round also runs both at that fixed
# rate. With AB_BATCH=N each request is a JSON array of N unique events (16
# connections), as in bench-ingest.sh's batch rounds. With AB_REPEATS=1 each
# round then sends the same events again for [seconds] at full speed (a
# client retrying everything, as after a timeout), and the script prints the
# repeats' events/s, the share the server answered as duplicates, and their
# median ratio. With BENCH_IDENTIFIED=1 (and AB_SOURCES=bench) the load's
# users are identified before each run, so every trigger writes its workflow
# run. Every run prints the bytes the server wrote to disk per event.
# Usage: [AB_SOURCES=bench] [AB_BATCH=N] [AB_REPEATS=1] [BENCH_IDENTIFIED=1] bash bins/loadgen/bench-ab.sh REV [seconds] [rounds] [RATE]
set -euo pipefail
cd "$(dirname "$0")/../.."
REV="${1:?usage: bench-ab.sh REV [seconds] [rounds]}"
SECS="${2:-10}"
ROUNDS="${3:-4}"
RATE="${4:-}"
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

TOKEN=tok_bench_0123456789abcdefghij
source bins/loadgen/bench-lib.sh
build_rev "$REV"
cargo build --release -q -p tributary-ingest -p tributary-loadgen
NEW_TARGET="${CARGO_TARGET_DIR:-target}"
OLD_BIN="$REV_BIN"
NEW_BIN="$NEW_TARGET/release/tributary-ingest"
LOADGEN="$NEW_TARGET/release/tributary-loadgen"

ab_header "$REV"

URL="http://127.0.0.1:9091/integrations/receive/$TOKEN"
if [ -n "${AB_BATCH:-}" ]; then
  LOAD=(--connections 16 --batch "$AB_BATCH" --shape array)
else
  LOAD=(--connections 64)
fi
ratio() { awk -v b="$1" -v a="$2" 'BEGIN {printf "%.3f\n", b / a}'; } # b a
bytes_of() { awk '/^server wrote to disk:/ {print $(NF - 3)}' "$1"; }
p99_of() { grep -m1 -i 'p99' "$1" | xargs; }

run_one() { # label binary round
  { printf '[server]\nlisten = "127.0.0.1:9091"\n[store]\npath = "%s"\n' "$WORK/data-$1-$3"
    if [ "${AB_SOURCES:-}" = bench ]; then
      bench_sources
    else
      printf '[environments.production]\n[[sources]]\nkey = "segment"\nkind = "segment"\n[sources.environments.production]\ntoken = "%s"\n' "$TOKEN"
    fi
  } > "$WORK/bench.toml"
  RUST_LOG=warn "$2" --config "$WORK/bench.toml" >/dev/null &
  local pid=$!
  until curl -sf http://127.0.0.1:9091/healthz >/dev/null; do sleep 0.005; done
  identify_if_asked 9091 "$LOADGEN"
  sleep 0.5
  local s0; s0=$(device_sectors "$WORK")
  local cpu0; cpu0=$(cpu_ticks "$pid")
  "$LOADGEN" run --url "$URL" "${LOAD[@]}" --seconds "$SECS" --server-pid "$pid" > "$WORK/$1-$3"
  local drain; drain=$(outbox_drain 9091)
  device_bytes_per_event "$s0" "$(device_sectors "$WORK")" "$WORK/$1-$3" > "$WORK/dev-$1-$3"
  done_rate "$SECS" "$drain" "$WORK/$1-$3" > "$WORK/done-$1-$3"
  cpu_per_event "$(( $(cpu_ticks "$pid") - cpu0 ))" "$(cat "$WORK/done-$1-$3")" "$(awk -v s="$SECS" -v d="$drain" 'BEGIN {print s + d}')" > "$WORK/cpu-$1-$3"
  echo "round $3 $1: $(rate_of "$WORK/$1-$3") events/s answered, $(cat "$WORK/done-$1-$3") with their actions run (outbox empty $drain s after the run), $(cat "$WORK/cpu-$1-$3") µs server CPU per event, bytes per event: $(bytes_of "$WORK/$1-$3") dirtied by the server during the run, $(cat "$WORK/dev-$1-$3") written to the device"
  if [ -n "$RATE" ]; then
    s0=$(device_sectors "$WORK")
    "$LOADGEN" run --url "$URL" "${LOAD[@]}" --seconds "$SECS" --rate "$RATE" --first 100000000 \
      --server-pid "$pid" > "$WORK/$1-$3-rate"
    echo "round $3 $1 at $RATE/s: $(p99_of "$WORK/$1-$3-rate"), bytes per event: $(bytes_of "$WORK/$1-$3-rate") dirtied by the server, $(device_bytes_per_event "$s0" "$(device_sectors "$WORK")" "$WORK/$1-$3-rate" | tr -d '\n') written to the device"
  fi
  if [ -n "${AB_REPEATS:-}" ]; then
    local dup0; dup0=$(metric_total 9091 tributary_events_duplicate_total)
    "$LOADGEN" run --url "$URL" "${LOAD[@]}" --seconds "$SECS" --first 0 --server-pid "$pid" > "$WORK/$1-$3-repeat"
    local dups=$(( $(metric_total 9091 tributary_events_duplicate_total) - dup0 ))
    echo "round $3 $1 repeating its events: $(rate_of "$WORK/$1-$3-repeat") events/s, $(awk -v d="$dups" -v r="$(rate_of "$WORK/$1-$3-repeat")" -v s="$SECS" 'BEGIN {printf "%.1f", 100 * d / (r * s)}')% of them answered as duplicates"
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

for round in $(seq "$ROUNDS"); do
  # Alternate which goes first, so neither always meets a warmer machine.
  if [ $((round % 2)) -eq 1 ]; then
    run_one A "$OLD_BIN" "$round"; run_one B "$NEW_BIN" "$round"
  else
    run_one B "$NEW_BIN" "$round"; run_one A "$OLD_BIN" "$round"
  fi
  echo "ratio B / A, round $round: $(ratio "$(cat "$WORK/done-B-$round")" "$(cat "$WORK/done-A-$round")")"
done

echo "== summary over $ROUNDS rounds"
echo "A events/s answered: $(for r in $(seq "$ROUNDS"); do rate_of "$WORK/A-$r"; done | tr '\n' ' ')"
echo "B events/s answered: $(for r in $(seq "$ROUNDS"); do rate_of "$WORK/B-$r"; done | tr '\n' ' ')"
echo "median ratio B / A, answered: $(for r in $(seq "$ROUNDS"); do ratio "$(rate_of "$WORK/B-$r")" "$(rate_of "$WORK/A-$r")"; done | median)"
echo "A events/s with their actions run: $(cat "$WORK"/done-A-* | tr '\n' ' ')"
echo "B events/s with their actions run: $(cat "$WORK"/done-B-* | tr '\n' ' ')"
echo "median ratio B / A, with their actions run: $(for r in $(seq "$ROUNDS"); do ratio "$(cat "$WORK/done-B-$r")" "$(cat "$WORK/done-A-$r")"; done | median)"
echo "bytes per event dirtied by the server, A: $(for r in $(seq "$ROUNDS"); do bytes_of "$WORK/A-$r"; done | tr '\n' ' ')B: $(for r in $(seq "$ROUNDS"); do bytes_of "$WORK/B-$r"; done | tr '\n' ' ')"
echo "bytes per event written to the device, A: $(cat "$WORK"/dev-A-* | tr '\n' ' ')B: $(cat "$WORK"/dev-B-* | tr '\n' ' ')"
echo "server CPU per event, µs, A: $(cat "$WORK"/cpu-A-* | tr '\n' ' ')B: $(cat "$WORK"/cpu-B-* | tr '\n' ' ')"
echo "median server CPU per event B / A: $(ratio "$(cat "$WORK"/cpu-B-* | median)" "$(cat "$WORK"/cpu-A-* | median)")"
if [ -n "${AB_REPEATS:-}" ]; then
  echo "A repeats, events/s: $(for r in $(seq "$ROUNDS"); do rate_of "$WORK/A-$r-repeat"; done | tr '\n' ' ')"
  echo "B repeats, events/s: $(for r in $(seq "$ROUNDS"); do rate_of "$WORK/B-$r-repeat"; done | tr '\n' ' ')"
  echo "median ratio B / A, repeats: $(for r in $(seq "$ROUNDS"); do ratio "$(rate_of "$WORK/B-$r-repeat")" "$(rate_of "$WORK/A-$r-repeat")"; done | median)"
fi
