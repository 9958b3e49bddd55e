#!/usr/bin/env bash
# The same source with and without a typical verification script, side by
# side on this machine (docs/PERFORMANCE.md, "Preprocess scripts (issue 21)"):
# the release ingest binary alternates the two configurations for [rounds]
# rounds of [seconds] at full speed (64 connections, 1 KB Segment track events
# on a receive URL, SQLite with fsync on, a fresh store each round). The
# script computes HMAC-SHA256 of the raw body through the host function and
# compares it with a header in constant time; the load sends no valid
# signature, so `enforce = false` keeps every event and the script does its
# whole work on each. Prints events/s and server CPU per event for both, and
# the median ratios script / none.
# Usage: bash bins/loadgen/bench-preprocess.sh [seconds] [rounds]
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
URL="http://127.0.0.1:9091/integrations/receive/$TOKEN"
SOURCE="[environments.production]
[[sources]]
key = \"segment\"
kind = \"segment\"
[sources.environments.production]
token = \"$TOKEN\""
printf '%s\n' "$SOURCE" > "$WORK/none.body"
cat > "$WORK/script.body" <<TOML
$SOURCE
[sources.environments.production.preprocess]
enforce = false
vars = { SECRET = "whsec_bench_secret_0123456789" }
script = '''
export function main(ctx) {
  const expected = crypto.hmacSha256Hex(ctx.vars.SECRET, ctx.rawBody);
  const verified = crypto.timingSafeEqual(expected, ctx.headers["x-signature"] ?? "");
  return { verified, kind: ctx.body.type };
}
'''
TOML

source bins/loadgen/bench-lib.sh
alternate script none "$ROUNDS"
