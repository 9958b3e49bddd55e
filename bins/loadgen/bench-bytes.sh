#!/usr/bin/env bash
# Where the bytes an event costs go, on SQLite: runs tributary-ingest at a
# fixed rate (or full speed with rate 0) with the benchmark's configuration,
# reports the bytes the server wrote to disk per event (/proc/PID/io: WAL and
# checkpoints), copies the store while the server still runs and prints the
# WAL frames per table and index (wal-breakdown.py).
# Usage: bash bins/loadgen/bench-bytes.sh [seconds] [rate]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS="${1:-10}"
RATE="${2:-5000}"
cargo build --release -q -p tributary-ingest -p tributary-loadgen
BIN=target/release
source bins/loadgen/bench-lib.sh
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"' EXIT
TOKEN=tok_bench_0123456789abcdefghij
start_server 9092 data
PID=$SERVER_PID
RATE_ARG=(); [ "$RATE" != 0 ] && RATE_ARG=(--rate "$RATE")
"$BIN/tributary-loadgen" run --url "http://127.0.0.1:9092/integrations/receive/$TOKEN" --connections 64 \
  --seconds "$SECS" "${RATE_ARG[@]}" --server-pid "$PID" | grep -E '^(throughput|latency|server wrote)'
mkdir "$WORK/copy"
cp "$WORK/data/tributary.db" "$WORK/data/tributary.db-wal" "$WORK/copy/"
kill "$PID"; wait "$PID" 2>/dev/null || true
python3 bins/loadgen/wal-breakdown.py "$WORK/copy"
