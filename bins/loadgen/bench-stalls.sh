#!/usr/bin/env bash
# Stalls on a full store: fills a SQLite store with [events] events (batches
# of 100 in JSON arrays, full speed), then runs [runs] consecutive runs of
# [seconds] at a fixed 5,000 events/s on the same running server, printing
# each run's latency percentiles, bytes written per event, the host's CPU
# steal during it, the store's slowest steps (journal sync, commit, WAL
# restart, checkpoint), its slow-step warnings, and how many answers took
# over 10 ms inside the server (from the handler's start: a tail the load
# generator sees and the server does not was spent before the handler ran,
# in the kernel or waiting for a core). Before the server starts, it times
# the disk alone for [seconds] (`tributary-loadgen syncs`: the journal's
# writes and syncs at its rate for 5,000 events/s), so the store's slow
# syncs can be read against the disk's own. Issue 19's
# goal: p99 <= 10 ms in each of 5 runs of 60 s on a store of 1,000,000.
# With INGEST_BIN=path it runs that build of tributary-ingest instead.
# Usage: [INGEST_BIN=path] bash bins/loadgen/bench-stalls.sh [events] [runs] [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
EVENTS="${1:-1000000}"
RUNS="${2:-5}"
SECS="${3:-60}"
cargo build --release -q -p tributary-ingest -p tributary-loadgen
BIN=target/release
source bins/loadgen/bench-lib.sh
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
TOKEN=tok_bench_0123456789abcdefghij
echo "== the disk alone: the intake journal's writes and syncs for $SECS s, no server"
"$BIN/tributary-loadgen" syncs --dir "$WORK" --seconds "$SECS"
start_server 9093 data
PID=$SERVER_PID
URL="http://127.0.0.1:9093/integrations/receive/$TOKEN"
echo "== filling the store with $EVENTS events"
# Each run starts numbering where the last ended: no messageId repeats.
next=0
filled=0
while [ "$filled" -lt "$EVENTS" ]; do
  "$BIN/tributary-loadgen" run --url "$URL" --connections 16 --seconds 10 --batch 100 --shape array --first "$next" > "$WORK/fill"
  filled=$((filled + $(awk '/^events in 2xx answers:/ {print $5}' "$WORK/fill")))
  next=$(awk '/^next event number:/ {print $4}' "$WORK/fill")
  echo "filled: $filled"
done
# The fill plans an action per event; the measured runs start once the
# workers have run them all, so they measure the load, not a backlog.
echo "store on disk: $(du -sh "$WORK/data" | cut -f1), every action run $(outbox_drain 9093 3600) s after the fill"
sleep 5
for run in $(seq "$RUNS"); do
  echo "== run $run of $RUNS: $SECS s at 5,000 events/s"
  before=$(cpu_times)
  steps=$(step_counts 9093)
  answers=$(answer_counts 9093 receive)
  logged=$(wc -l < "$WORK/server-9093.log")
  "$BIN/tributary-loadgen" run --url "$URL" --connections 64 --seconds "$SECS" --rate 5000 --server-pid "$PID" --first "$next" > "$WORK/run"
  grep -E '^(statuses|throughput|latency|server wrote)' "$WORK/run"
  echo "host steal: $(steal_percent "$before" "$(cpu_times)")% of the CPU"
  echo "store steps: $(step_counts_between "$steps" "$(step_counts 9093)")"
  echo "server: $(answer_counts_between "$answers" "$(answer_counts 9093 receive)")"
  tail -n +"$((logged + 1))" "$WORK/server-9093.log" | grep -F 'step was slow' || true
  next=$(awk '/^next event number:/ {print $4}' "$WORK/run")
done
