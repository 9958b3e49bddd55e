#!/usr/bin/env bash
# Side-by-side load benchmark on this machine: a bare hyper server that only
# parses the JSON (the ceiling), then tributary-ingest on SQLite with fsync on.
# The two alternate for [rounds] rounds (these machines are noisy: a ratio
# measured within one round is what to compare), then the last round's ingest
# server runs at a fixed 5,000 events/s for latency.
# Usage: bash bins/loadgen/bench-ingest.sh [seconds] [rounds]
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
write_config() {
cat > "$WORK/bench.toml" <<TOML
[server]
listen = "127.0.0.1:9091"
[store]
path = "$WORK/data-$1"
[environments.production]
[[sources]]
key = "segment"
kind = "segment"
[sources.environments.production]
token = "$TOKEN"
[[sources.environments.production.mappings]]
event = "Order Completed"
action = "trigger_workflow"
workflow = "order-confirmation"
TOML
}

start_ingest() {
  local t0; t0=$(date +%s%N)
  RUST_LOG=warn $BIN/tributary-ingest --config "$WORK/bench.toml" >/dev/null &
  INGEST_PID=$!
  until curl -sf http://127.0.0.1:9091/healthz >/dev/null; do sleep 0.005; done
  echo "start-up to first healthy answer: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
}

URL="http://127.0.0.1:9091/integrations/receive/$TOKEN"
# Whether the in-process workers kept up: every accepted event plans one
# trigger, so pushed minus popped is the backlog the run left behind.
outbox() { curl -s http://127.0.0.1:9091/metrics | awk -v m="$1" '$1 ~ "^"m {s += $2} END {printf "%d", s}'; }
rate_of() { awk '/^throughput:/ {print $2}' "$1"; }
median() { sort -n | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

for round in $(seq "$ROUNDS"); do
  echo "== round $round of $ROUNDS: baseline, bare hyper, parse JSON, 204"
  $BIN/tributary-loadgen baseline --listen 127.0.0.1:9090 >/dev/null &
  BASE_PID=$!
  sleep 0.5
  $BIN/tributary-loadgen run --url http://127.0.0.1:9090/ --connections 64 --seconds "$SECS" | tee "$WORK/base-$round"
  kill $BASE_PID; wait $BASE_PID 2>/dev/null || true

  echo "== round $round of $ROUNDS: tributary-ingest, SQLite (WAL, fsync before every answer), 64 connections, full speed"
  # A fresh store per round, each in its own directory, all removed at exit:
  # deleting a few hundred MB on this disk (ext4 mounted with `discard`) held
  # a running server's fsyncs up for 40-60 ms (docs/PERFORMANCE.md).
  write_config "$round"
  start_ingest
  sleep 1
  echo "idle RSS: $(grep VmRSS /proc/$INGEST_PID/status | awk '{printf "%.1f MiB", $2/1024}')"
  $BIN/tributary-loadgen run --url "$URL" --connections 64 --seconds "$SECS" --server-pid "$INGEST_PID" | tee "$WORK/ingest-$round"
  echo "actions queued: $(outbox tributary_outbox_pushed_total), executed by the end of the run: $(outbox tributary_outbox_popped_total)"
  # The last round's server stays up for the fixed-rate run below, so that run
  # measures a store in use, not a fresh file (a fresh file's first seconds
  # measured a higher p99 in two runs of three; docs/PERFORMANCE.md).
  if [ "$round" -lt "$ROUNDS" ]; then kill $INGEST_PID; wait $INGEST_PID 2>/dev/null || true; fi
  echo "ratio ingest / bare hyper, round $round: $(awk -v a="$(rate_of "$WORK/ingest-$round")" -v b="$(rate_of "$WORK/base-$round")" 'BEGIN {printf "%.3f", a / b}')"
done

echo "== summary over $ROUNDS rounds"
echo "bare hyper requests/s: $(for r in $(seq "$ROUNDS"); do rate_of "$WORK/base-$r"; done | tr '\n' ' ')"
echo "ingest events/s: $(for r in $(seq "$ROUNDS"); do rate_of "$WORK/ingest-$r"; done | tr '\n' ' ')(median $(for r in $(seq "$ROUNDS"); do rate_of "$WORK/ingest-$r"; done | median))"
echo "median ratio ingest / bare hyper: $(for r in $(seq "$ROUNDS"); do awk -v a="$(rate_of "$WORK/ingest-$r")" -v b="$(rate_of "$WORK/base-$r")" 'BEGIN {printf "%.3f\n", a / b}'; done | median)"

echo "== tributary-ingest at a fixed 5,000 events/s (open loop), 64 connections, after the last round"
$BIN/tributary-loadgen run --url "$URL" --connections 64 --seconds "$SECS" --rate 5000 --server-pid "$INGEST_PID"
kill $INGEST_PID; wait $INGEST_PID 2>/dev/null || true
