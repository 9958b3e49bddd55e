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
"$BIN/tributary-loadgen" config --sources 1000 --environments 3 --mappings 10 --token "$TOKEN" > "$WORK/big.body"
"$BIN/tributary-loadgen" config --sources 1 --environments 1 --mappings 1 --token "$TOKEN" > "$WORK/small.body"
echo "== big: $(grep -c '^\[\[sources\]\]' "$WORK/big.body") sources, $(grep -c 'mappings\]\]' "$WORK/big.body") mappings; small: $(grep -c 'mappings\]\]' "$WORK/small.body") mapping"

URL="http://127.0.0.1:9091/integrations/receive/$TOKEN"
# shellcheck source=bins/loadgen/bench-lib.sh
source bins/loadgen/bench-lib.sh
alternate big small "$ROUNDS"
