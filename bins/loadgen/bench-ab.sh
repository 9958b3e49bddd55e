#!/usr/bin/env bash
# A/B of the ingest service between a git revision and the working tree, side
# by side in one run on this machine: the two builds alternate for [rounds]
# rounds of [seconds] at full speed (64 connections, single events on a
# receive URL, SQLite with fsync on), each round on a fresh store, and the
# script prints each round's events/s and the median ratio this tree / REV.
# The configuration has no mappings, so both builds do the same work whatever
# their mapping engines plan: it measures the request path (HTTP, adapter,
# dedup, group-committed append).
# Usage: bash bins/loadgen/bench-ab.sh REV [seconds] [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
REV="${1:?usage: bench-ab.sh REV [seconds] [rounds]}"
SECS="${2:-10}"
ROUNDS="${3:-4}"
WORK="$(mktemp -d)"
OLD_TREE="$WORK/tree"
trap 'kill $(jobs -p) 2>/dev/null || true; git worktree remove --force "$OLD_TREE" 2>/dev/null || true; rm -rf "$WORK"' EXIT

# REV's build keeps its own target directory between runs of this script.
OLD_TARGET="${TRIBUTARY_AB_TARGET:-${TMPDIR:-/tmp}/tributary-ab-target}"
git worktree add --detach "$OLD_TREE" "$REV" >/dev/null
(cd "$OLD_TREE" && CARGO_TARGET_DIR="$OLD_TARGET" cargo build --release -q -p tributary-ingest)
cargo build --release -q -p tributary-ingest -p tributary-loadgen
NEW_TARGET="${CARGO_TARGET_DIR:-target}"
OLD_BIN="$OLD_TARGET/release/tributary-ingest"
NEW_BIN="$NEW_TARGET/release/tributary-ingest"
LOADGEN="$NEW_TARGET/release/tributary-loadgen"

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== A: $REV ($(git rev-parse --short "$REV")), B: this tree ($(git rev-parse --short HEAD)$(git diff --quiet || echo ', modified'))"

TOKEN=tok_bench_0123456789abcdefghij
URL="http://127.0.0.1:9091/integrations/receive/$TOKEN"
rate_of() { awk '/^throughput:/ {print $2}' "$1"; }
median() { sort -n | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

run_one() { # label binary round
  cat > "$WORK/bench.toml" <<TOML
[server]
listen = "127.0.0.1:9091"
[store]
path = "$WORK/data-$1-$3"
[environments.production]
[[sources]]
key = "segment"
kind = "segment"
[sources.environments.production]
token = "$TOKEN"
TOML
  RUST_LOG=warn "$2" --config "$WORK/bench.toml" >/dev/null &
  local pid=$!
  until curl -sf http://127.0.0.1:9091/healthz >/dev/null; do sleep 0.005; done
  sleep 0.5
  "$LOADGEN" run --url "$URL" --connections 64 --seconds "$SECS" --server-pid "$pid" > "$WORK/$1-$3"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "round $3 $1: $(rate_of "$WORK/$1-$3") events/s"
}

for round in $(seq "$ROUNDS"); do
  # Alternate which goes first, so neither always meets a warmer machine.
  if [ $((round % 2)) -eq 1 ]; then
    run_one A "$OLD_BIN" "$round"; run_one B "$NEW_BIN" "$round"
  else
    run_one B "$NEW_BIN" "$round"; run_one A "$OLD_BIN" "$round"
  fi
  echo "ratio B / A, round $round: $(awk -v b="$(rate_of "$WORK/B-$round")" -v a="$(rate_of "$WORK/A-$round")" 'BEGIN {printf "%.3f", b / a}')"
done

echo "== summary over $ROUNDS rounds"
echo "A events/s: $(for r in $(seq "$ROUNDS"); do rate_of "$WORK/A-$r"; done | tr '\n' ' ')"
echo "B events/s: $(for r in $(seq "$ROUNDS"); do rate_of "$WORK/B-$r"; done | tr '\n' ' ')"
echo "median ratio B / A: $(for r in $(seq "$ROUNDS"); do awk -v b="$(rate_of "$WORK/B-$r")" -v a="$(rate_of "$WORK/A-$r")" 'BEGIN {printf "%.3f\n", b / a}'; done | median)"
