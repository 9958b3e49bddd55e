#!/usr/bin/env bash
# Peak memory of the ingest service, side by side between a git revision and
# the working tree on this machine: the two builds alternate for [rounds]
# rounds, each on a fresh store taking `/v1/batch` requests of 100 unique
# events at a fixed [rate] events/s for [seconds] (the same events for both,
# so both end holding the same dedup keys), and the script prints each run's
# peak RSS (sampled each 100 ms by the load generator) and, from builds that
# report it, the bytes of SQLite's dedup index at the end of the run
# (`tributary_store_dedup_index_bytes`). At the defaults a run stores 1.5
# million events, past the index's doubling at about 1.4 million.
# Usage: bash bins/loadgen/bench-memory.sh REV [seconds] [rounds] [rate]
set -euo pipefail
cd "$(dirname "$0")/../.."
REV="${1:?usage: bench-memory.sh REV [seconds] [rounds] [rate]}"
SECS="${2:-30}"
ROUNDS="${3:-3}"
RATE="${4:-50000}"
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

TOKEN=tok_bench_0123456789abcdefghij
WRITE_KEY=wk_bench_0123456789abcdefghij
BASIC="authorization: Basic $(printf '%s:' "$WRITE_KEY" | base64)"
source bins/loadgen/bench-lib.sh
build_rev "$REV"
cargo build --release -q -p tributary-ingest -p tributary-loadgen
BIN="${CARGO_TARGET_DIR:-target}/release"

ab_header "$REV"
echo "== /v1/batch, 100 events per request, 16 connections, $RATE events/s for $SECS s, a fresh store per run"

peak_of() { awk '/^server peak RSS:/ {print $4}' "$1"; }

run_one() { # label binary round
  INGEST_BIN="$2" start_server 9091 "data-$1-$3"
  local pid=$SERVER_PID
  "$BIN/tributary-loadgen" run --url http://127.0.0.1:9091/v1/batch --header "$BASIC" \
    --connections 16 --batch 100 --shape batch --seconds "$SECS" --rate "$RATE" \
    --server-pid "$pid" > "$WORK/$1-$3"
  local index; index=$(metric_total 9091 tributary_store_dedup_index_bytes)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "${WORK:?}/data-$1-$3"
  echo "round $3 $1: $(rate_of "$WORK/$1-$3") events/s, peak RSS $(peak_of "$WORK/$1-$3") MiB, dedup index at the end $(awk -v b="$index" 'BEGIN {printf "%.1f", b / 1048576}') MiB"
}

for round in $(seq "$ROUNDS"); do
  # Alternate which goes first, so neither always meets a warmer machine.
  if [ $((round % 2)) -eq 1 ]; then
    run_one A "$REV_BIN" "$round"; run_one B "$BIN/tributary-ingest" "$round"
  else
    run_one B "$BIN/tributary-ingest" "$round"; run_one A "$REV_BIN" "$round"
  fi
done

echo "== summary over $ROUNDS rounds"
for side in A B; do
  echo "$side peak RSS, MiB: $(for r in $(seq "$ROUNDS"); do peak_of "$WORK/$side-$r"; done | tr '\n' ' ')(median $(for r in $(seq "$ROUNDS"); do peak_of "$WORK/$side-$r"; done | median))"
done
