#!/usr/bin/env bash
# Ingest throughput with a big configuration loaded against a one-mapping
# configuration, side by side in one run on this machine (issue 16's
# acceptance): "big" is 1,000 sources x 3 environments x 10 mappings
# (`tributary-loadgen config`), the load going to one of its source
# environments; "small" is one source, one environment, one mapping. In both
# each event matches one mapping, so both plan the same work per event. The
# two alternate for [rounds] rounds of [seconds] at full speed (64
# connections, single 1 KB events on a receive URL, SQLite with fsync on, the
# workers executing the triggers), each round on a fresh store, and the
# script prints each round's events/s and the median ratio big / small.
# Usage: bash bins/loadgen/bench-live-config.sh [seconds] [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS="${1:-10}"
ROUNDS="${2:-3}"
cargo build --release -q -p tributary-ingest -p tributary-loadgen
BIN="${CARGO_TARGET_DIR:-target}/release"
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average $(cut -d' ' -f1-3 /proc/loadavg)"

TOKEN=tok_bench_0123456789abcdefghij
"$BIN/tributary-loadgen" config --sources 1000 --environments 3 --mappings 10 --token "$TOKEN" > "$WORK/big.sources"
"$BIN/tributary-loadgen" config --sources 1 --environments 1 --mappings 1 --token "$TOKEN" > "$WORK/small.sources"
echo "== big: $(grep -c '^\[\[sources\]\]' "$WORK/big.sources") sources, $(grep -c 'mappings\]\]' "$WORK/big.sources") mappings; small: $(grep -c 'mappings\]\]' "$WORK/small.sources") mapping"

URL="http://127.0.0.1:9091/integrations/receive/$TOKEN"
rate_of() { awk '/^throughput:/ {print $2}' "$1"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
median() { sort -n | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

run_one() { # big|small round
  {
    printf '[server]\nlisten = "127.0.0.1:9091"\n[store]\npath = "%s"\n' "$WORK/data-$1-$2"
    cat "$WORK/$1.sources"
  } > "$WORK/$1.toml"
  local t0; t0=$(date +%s%N)
  RUST_LOG=warn "$BIN/tributary-ingest" --config "$WORK/$1.toml" >/dev/null &
  local pid=$!
  until curl -sf http://127.0.0.1:9091/healthz >/dev/null; do sleep 0.005; done
  local started=$(( ($(date +%s%N) - t0) / 1000000 ))
  sleep 0.5
  local rss; rss=$(awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status")
  local cpu0; cpu0=$(cpu_ticks "$pid")
  "$BIN/tributary-loadgen" run --url "$URL" --connections 64 --seconds "$SECS" --server-pid "$pid" > "$WORK/$1-$2"
  # The server's CPU per event moves less with the machine's load than
  # events/s does: a second figure to compare big and small by.
  awk -v t="$(( $(cpu_ticks "$pid") - cpu0 ))" -v hz="$(getconf CLK_TCK)" -v n="$(awk '/^throughput:/ {print $2}' "$WORK/$1-$2")" -v s="$SECS" \
    'BEGIN {printf "%.1f\n", t / hz * 1e6 / (n * s)}' > "$WORK/cpu-$1-$2"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "round $2 $1: $(rate_of "$WORK/$1-$2") events/s, $(cat "$WORK/cpu-$1-$2") µs server CPU per event (start-up $started ms, idle RSS $rss MiB, $(grep -m1 -i 'p99' "$WORK/$1-$2" | xargs))"
}

for round in $(seq "$ROUNDS"); do
  # Alternate which goes first, so neither always meets a warmer machine.
  if [ $((round % 2)) -eq 1 ]; then
    run_one small "$round"; run_one big "$round"
  else
    run_one big "$round"; run_one small "$round"
  fi
  echo "ratio big / small, round $round: $(awk -v b="$(rate_of "$WORK/big-$round")" -v s="$(rate_of "$WORK/small-$round")" 'BEGIN {printf "%.3f", b / s}')"
done

echo "== summary over $ROUNDS rounds, load average now $(cut -d' ' -f1-3 /proc/loadavg)"
echo "small events/s: $(for r in $(seq "$ROUNDS"); do rate_of "$WORK/small-$r"; done | tr '\n' ' ')"
echo "big events/s: $(for r in $(seq "$ROUNDS"); do rate_of "$WORK/big-$r"; done | tr '\n' ' ')"
echo "server CPU per event, µs, small: $(cat "$WORK"/cpu-small-* | tr '\n' ' ')big: $(cat "$WORK"/cpu-big-* | tr '\n' ' ')"
echo "median ratio big / small: $(for r in $(seq "$ROUNDS"); do awk -v b="$(rate_of "$WORK/big-$r")" -v s="$(rate_of "$WORK/small-$r")" 'BEGIN {printf "%.3f\n", b / s}'; done | median)"
echo "median server CPU per event big / small: $(awk -v b="$(cat "$WORK"/cpu-big-* | median)" -v s="$(cat "$WORK"/cpu-small-* | median)" 'BEGIN {printf "%.3f", b / s}')"
