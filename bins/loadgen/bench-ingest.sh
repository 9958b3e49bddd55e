#!/usr/bin/env bash
# Side-by-side load benchmark on this machine: a bare hyper server that only
# parses the JSON (the ceiling), then tributary-ingest on SQLite with fsync on.
# Usage: bash bins/loadgen/bench-ingest.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS="${1:-10}"
cargo build --release -q -p tributary-ingest -p tributary-loadgen
BIN=target/release
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

echo "== baseline: bare hyper, parse JSON, 204"
$BIN/tributary-loadgen baseline --listen 127.0.0.1:9090 >/dev/null &
sleep 0.5
$BIN/tributary-loadgen run --url http://127.0.0.1:9090/ --connections 64 --seconds "$SECS"
kill %1; wait %1 2>/dev/null || true

TOKEN=tok_bench_0123456789abcdefghij
cat > "$WORK/bench.toml" <<TOML
[server]
listen = "127.0.0.1:9091"
[store]
path = "$WORK/data"
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

start_ingest() {
  local t0; t0=$(date +%s%N)
  RUST_LOG=warn $BIN/tributary-ingest --config "$WORK/bench.toml" >/dev/null &
  INGEST_PID=$!
  until curl -sf http://127.0.0.1:9091/healthz >/dev/null; do sleep 0.005; done
  echo "start-up to first healthy answer: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
}

echo "== tributary-ingest, SQLite (WAL, fsync before every answer), 64 connections, full speed"
start_ingest
sleep 1
echo "idle RSS: $(grep VmRSS /proc/$INGEST_PID/status | awk '{printf "%.1f MiB", $2/1024}')"
URL="http://127.0.0.1:9091/integrations/receive/$TOKEN"
$BIN/tributary-loadgen run --url "$URL" --connections 64 --seconds "$SECS" --server-pid "$INGEST_PID"
# Whether the in-process workers kept up: every accepted event plans one
# trigger, so pushed minus popped is the backlog the run left behind.
outbox() { curl -s http://127.0.0.1:9091/metrics | awk -v m="$1" '$1 ~ "^"m {s += $2} END {printf "%d", s}'; }
echo "actions queued: $(outbox tributary_outbox_pushed_total), executed by the end of the run: $(outbox tributary_outbox_popped_total)"

echo "== tributary-ingest at a fixed 5,000 events/s (open loop), 64 connections"
$BIN/tributary-loadgen run --url "$URL" --connections 64 --seconds "$SECS" --rate 5000 --server-pid "$INGEST_PID"
kill $INGEST_PID; wait $INGEST_PID 2>/dev/null || true
