#!/usr/bin/env bash
# Does the operator console cost the ingest path anything? The same release
# binary and configuration (one source, one mapping, the admin API on),
# once with the console served and once with `[admin] console = false`,
# alternated for [rounds] rounds of [seconds] at full speed (64 connections,
# single 1 KB events on a receive URL, SQLite with fsync on, workers on),
# each round on a fresh store; prints each round and the median ratios.
# Usage: bash bins/loadgen/bench-console.sh [seconds] [rounds]
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
SOURCES="$("$BIN/tributary-loadgen" config --sources 1 --environments 1 --mappings 1 --token "$TOKEN")"
for console in true false; do
  name=$([ "$console" = true ] && echo console || echo api-only)
  printf '[admin]\ntoken = "adm_bench_console_0123456789"\nconsole = %s\n%s\n' "$console" "$SOURCES" > "$WORK/$name.body"
done

URL="http://127.0.0.1:9091/integrations/receive/$TOKEN"
# shellcheck source=bins/loadgen/bench-lib.sh
source bins/loadgen/bench-lib.sh
alternate console api-only "$ROUNDS"
