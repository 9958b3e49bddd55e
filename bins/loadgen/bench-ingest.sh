#!/usr/bin/env bash
# Side-by-side load benchmark on this machine: a bare hyper server that only
# parses the JSON (the ceiling), the same server making every body durable
# before its answer (a file, fdatasync in groups: what a durable 2xx costs by
# itself), then tributary-ingest on SQLite with fsync on.
# The two alternate for [rounds] rounds (these machines are noisy: a ratio
# measured within one round is what to compare), then the last round's ingest
# server runs at a fixed 5,000 events/s for latency. Then the same for
# batches: 100 unique events per request to `/v1/batch` (a write key) and, as
# Segment's Webhooks destination sends them, a JSON array to a receive URL,
# against the baseline parsing the same bodies; then 20,000 events/s in
# batches for latency. Every ingest run reports the bytes the server wrote
# to disk per event (`/proc/PID/io`, WAL and checkpoints alike) and the bytes
# the block device took per event (`/proc` can count more than reached the
# disk: docs/PERFORMANCE.md says when), and how long after it the outbox was
# empty: events/s "with their actions run" counts that time too. The
# fixed-rate runs also print the store's steps over 10 and 50 ms, the
# journal's syncs among them.
# With BENCH_IDENTIFIED=1 the load's users are identified before each ingest
# run's load (after its start-up and idle readings), so every trigger writes
# its workflow run; without, every recipient is one never identified.
# Usage: [BENCH_IDENTIFIED=1] bash bins/loadgen/bench-ingest.sh [seconds] [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS="${1:-10}"
ROUNDS="${2:-3}"
cargo build --release -q -p tributary-ingest -p tributary-loadgen
BIN=target/release
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

TOKEN=tok_bench_0123456789abcdefghij
WRITE_KEY=wk_bench_0123456789abcdefghij
BASIC="authorization: Basic $(printf '%s:' "$WRITE_KEY" | base64)"
start_ingest() { # store
  local t0; t0=$(date +%s%N)
  start_server 9091 "data-$1"
  INGEST_PID=$SERVER_PID
  echo "start-up to first healthy answer: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
}

URL="http://127.0.0.1:9091/integrations/receive/$TOKEN"
source bins/loadgen/bench-lib.sh
# Whether the in-process workers kept up: every accepted event plans one
# trigger; waits for the outbox to drain and keeps how long that took.
drained() { # run-name
  echo "actions run by the end of the run: $(metric_total 9091 tributary_action_attempts_total), outbox empty $(outbox_drain 9091 | tee "$WORK/drain-$1") s after it"
}
# Keeps and prints the bytes the device took per event of run NAME since
# the reading S0 (the drain after a full-speed run included).
device_of_run() { # name s0
  echo "bytes the device took per event: $(device_bytes_per_event "$2" "$(device_sectors "$WORK")" "$WORK/$1" | tee "$WORK/dev-$1")"
}
dev_of() { cat "$(dirname "$1")/dev-$(basename "$1")"; }
done_of() { done_rate "$SECS" "$(cat "$(dirname "$1")/drain-$(basename "$1")")" "$1"; }
bytes_of() { awk '/^server wrote to disk:/ {print $(NF - 3)}' "$1"; }
ratios() { # a-prefix b-prefix
  for r in $(seq "$ROUNDS"); do awk -v a="$(rate_of "$WORK/$1-$r")" -v b="$(rate_of "$WORK/$2-$r")" 'BEGIN {printf "%.3f\n", a / b}'; done
}
# The durable baseline: the bare one plus each body appended to a file and
# fdatasynced in groups before its answer, the least a durable 2xx costs.
durable_baseline() { # name run-arguments...
  local name=$1; shift
  echo "== $name: durable baseline, bare hyper plus every body fdatasynced before its answer"
  mkdir -p "$WORK/journal-$name"
  $BIN/tributary-loadgen baseline --listen 127.0.0.1:9090 --durable-in "$WORK/journal-$name" >/dev/null &
  local pid=$!
  # Filling its 256 MiB file takes a moment: wait until it listens.
  for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:9090/ && break; sleep 0.1; done
  $BIN/tributary-loadgen run --url http://127.0.0.1:9090/ --seconds "$SECS" "$@"
  kill $pid; wait $pid 2>/dev/null || true
  rm -rf "$WORK/journal-$name"
}
all_of() { # what prefix
  for r in $(seq "$ROUNDS"); do "$1" "$WORK/$2-$r"; done | tr '\n' ' '
}

for round in $(seq "$ROUNDS"); do
  echo "== round $round of $ROUNDS: baseline, bare hyper, parse JSON, 204"
  $BIN/tributary-loadgen baseline --listen 127.0.0.1:9090 >/dev/null &
  BASE_PID=$!
  sleep 0.5
  $BIN/tributary-loadgen run --url http://127.0.0.1:9090/ --connections 64 --seconds "$SECS" | tee "$WORK/base-$round"
  kill $BASE_PID; wait $BASE_PID 2>/dev/null || true
  durable_baseline "$round" --connections 64 | tee "$WORK/durable-$round"

  echo "== round $round of $ROUNDS: tributary-ingest, SQLite (WAL, fsync before every answer), 64 connections, full speed"
  # A fresh store per round, each in its own directory, all removed at exit:
  # deleting a few hundred MB on this disk (ext4 mounted with `discard`) held
  # a running server's fsyncs up for 40-60 ms (docs/PERFORMANCE.md).
  start_ingest "$round"
  sleep 1
  echo "idle RSS: $(grep VmRSS /proc/$INGEST_PID/status | awk '{printf "%.1f MiB", $2/1024}')"
  identify_if_asked 9091 "$BIN/tributary-loadgen"
  S0=$(device_sectors "$WORK")
  $BIN/tributary-loadgen run --url "$URL" --connections 64 --seconds "$SECS" --server-pid "$INGEST_PID" | tee "$WORK/ingest-$round"
  drained "ingest-$round"
  device_of_run "ingest-$round" "$S0"
  # The last round's server stays up for the fixed-rate run below, so that run
  # measures a store in use, not a fresh file (a fresh file's first seconds
  # measured a higher p99 in two runs of three; docs/PERFORMANCE.md).
  if [ "$round" -lt "$ROUNDS" ]; then kill $INGEST_PID; wait $INGEST_PID 2>/dev/null || true; fi
  echo "ratio ingest / bare hyper, round $round: $(awk -v a="$(rate_of "$WORK/ingest-$round")" -v b="$(rate_of "$WORK/base-$round")" 'BEGIN {printf "%.3f", a / b}')"
done

echo "== tributary-ingest at a fixed 5,000 events/s (open loop), 64 connections, after the last round"
# New messageIds: the last round's would all be answered as duplicates.
S0=$(device_sectors "$WORK")
steps=$(step_counts 9091)
$BIN/tributary-loadgen run --url "$URL" --connections 64 --seconds "$SECS" --rate 5000 --first 100000000 --server-pid "$INGEST_PID" | tee "$WORK/fixed-single"
device_of_run fixed-single "$S0"
echo "store steps: $(step_counts_between "$steps" "$(step_counts 9091)")" | tee "$WORK/fixed-single-steps"
kill $INGEST_PID; wait $INGEST_PID 2>/dev/null || true

BATCH=100
for round in $(seq "$ROUNDS"); do
  echo "== batch round $round of $ROUNDS: baseline, bare hyper, parse $BATCH-event bodies, 204"
  $BIN/tributary-loadgen baseline --listen 127.0.0.1:9090 >/dev/null &
  BASE_PID=$!
  sleep 0.5
  $BIN/tributary-loadgen run --url http://127.0.0.1:9090/ --connections 16 --seconds "$SECS" --batch $BATCH --shape batch | tee "$WORK/bbase-$round"
  kill $BASE_PID; wait $BASE_PID 2>/dev/null || true
  durable_baseline "batch-$round" --connections 16 --batch $BATCH --shape batch | tee "$WORK/bdurable-$round"

  echo "== batch round $round of $ROUNDS: tributary-ingest, /v1/batch, $BATCH events per request, 16 connections, full speed"
  start_ingest "batch-$round"
  identify_if_asked 9091 "$BIN/tributary-loadgen"
  S0=$(device_sectors "$WORK")
  $BIN/tributary-loadgen run --url http://127.0.0.1:9091/v1/batch --header "$BASIC" --connections 16 --seconds "$SECS" --batch $BATCH --shape batch --server-pid "$INGEST_PID" | tee "$WORK/batch-$round"
  drained "batch-$round"
  device_of_run "batch-$round" "$S0"
  kill $INGEST_PID; wait $INGEST_PID 2>/dev/null || true

  echo "== batch round $round of $ROUNDS: tributary-ingest, receive URL, JSON arrays of $BATCH events, 16 connections, full speed"
  start_ingest "array-$round"
  identify_if_asked 9091 "$BIN/tributary-loadgen"
  S0=$(device_sectors "$WORK")
  $BIN/tributary-loadgen run --url "$URL" --connections 16 --seconds "$SECS" --batch $BATCH --shape array --server-pid "$INGEST_PID" | tee "$WORK/array-$round"
  drained "array-$round"
  device_of_run "array-$round" "$S0"
  if [ "$round" -lt "$ROUNDS" ]; then kill $INGEST_PID; wait $INGEST_PID 2>/dev/null || true; fi
done

echo "== tributary-ingest at a fixed 20,000 events/s in arrays of $BATCH (open loop), 16 connections, after the last round"
S0=$(device_sectors "$WORK")
steps=$(step_counts 9091)
$BIN/tributary-loadgen run --url "$URL" --connections 16 --seconds "$SECS" --rate 20000 --batch $BATCH --shape array --first 100000000 --server-pid "$INGEST_PID" | tee "$WORK/fixed-batch"
device_of_run fixed-batch "$S0"
echo "store steps: $(step_counts_between "$steps" "$(step_counts 9091)")" | tee "$WORK/fixed-batch-steps"
kill $INGEST_PID; wait $INGEST_PID 2>/dev/null || true

echo "== summary over $ROUNDS rounds"
echo "single events: bare hyper requests/s: $(all_of rate_of base)"
echo "single events: ingest events/s: $(all_of rate_of ingest)(median $(all_of rate_of ingest | tr ' ' '\n' | grep . | median))"
echo "single events: median ratio ingest / bare hyper: $(ratios ingest base | median)"
echo "single events: durable baseline requests/s: $(all_of rate_of durable)(median ratio to bare hyper $(ratios durable base | median)); median ratio ingest / durable baseline: $(ratios ingest durable | median)"
echo "single events: ingest events/s with their actions run: $(all_of done_of ingest)"
echo "single events: bytes written per event: $(all_of bytes_of ingest)"
echo "single events: bytes the device took per event: $(all_of dev_of ingest)"
echo "batches: bare hyper events/s: $(all_of rate_of bbase)"
echo "batches: durable baseline events/s: $(all_of rate_of bdurable)(median ratio to the bare one $(ratios bdurable bbase | median))"
echo "batches: ingest /v1/batch events/s: $(all_of rate_of batch)(median $(all_of rate_of batch | tr ' ' '\n' | grep . | median)), median ratio to the baseline $(ratios batch bbase | median)"
echo "batches: ingest receive URL arrays events/s: $(all_of rate_of array)(median $(all_of rate_of array | tr ' ' '\n' | grep . | median)), median ratio to the baseline $(ratios array bbase | median)"
echo "batches: events/s with their actions run, /v1/batch: $(all_of done_of batch)arrays: $(all_of done_of array)"
echo "batches: bytes written per event, /v1/batch: $(all_of bytes_of batch) arrays: $(all_of bytes_of array)"
echo "batches: bytes the device took per event, /v1/batch: $(all_of dev_of batch) arrays: $(all_of dev_of array)"
echo "fixed 5,000 events/s, single: $(grep -h '^latency' "$WORK/fixed-single"); bytes per event: $(bytes_of "$WORK/fixed-single") written, $(dev_of "$WORK/fixed-single") taken by the device"
echo "fixed 20,000 events/s, arrays of $BATCH: $(grep -h '^latency' "$WORK/fixed-batch"); bytes per event: $(bytes_of "$WORK/fixed-batch") written, $(dev_of "$WORK/fixed-batch") taken by the device"
echo "fixed 5,000 events/s, single, $(cat "$WORK/fixed-single-steps")"
echo "fixed 20,000 events/s, arrays, $(cat "$WORK/fixed-batch-steps")"
