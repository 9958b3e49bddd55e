# Shared by the A/B scripts that alternate two configurations of the
# release ingest binary on this machine (source it; set BIN, WORK, URL and
# SECS first). Each configuration `name` is `$WORK/name.body`: everything but
# `[server]` and `[store]`, which `run_one` writes (a fresh store per round).

# The benchmarks' source: one Segment source in `production` with receive
# token $TOKEN (and write key $WRITE_KEY when set) and one trigger mapping on
# the event the load generator sends. Prints everything but `[server]`,
# `[store]` and `[workers]`.
bench_sources() {
  cat <<TOML
[environments.production]
[[sources]]
key = "segment"
kind = "segment"
[sources.environments.production]
token = "$TOKEN"
${WRITE_KEY:+write_key = \"$WRITE_KEY\"}
[[sources.environments.production.mappings]]
event = "Order Completed"
action = "trigger_workflow"
workflow = "order-confirmation"
TOML
}

# Builds the release ingest binary of git revision REV and sets REV_BIN to
# it. The worktree and the target directory are kept between runs
# ($TRIBUTARY_AB_TARGET, else tributary-ab-target under $TMPDIR, and the same
# path with `-tree`): cargo keys its cache on the sources' path, so a fixed
# path rebuilds only what changed between two revisions.
build_rev() { # rev
  local sha; sha=$(git rev-parse --verify "$1^{commit}")
  local target="${TRIBUTARY_AB_TARGET:-${TMPDIR:-/tmp}/tributary-ab-target}"
  local tree="$target-tree"
  if git -C "$tree" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$tree" checkout -q --detach --force "$sha"
  else
    rm -rf "$tree"
    git worktree prune
    git worktree add -q --detach "$tree" "$sha"
  fi
  (cd "$tree" && CARGO_TARGET_DIR="$target" cargo build --release -q -p tributary-ingest)
  REV_BIN="$target/release/tributary-ingest"
}

# The header of an A/B against REV: the machine, and the two builds.
ab_header() { # rev
  echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "== A: $1 ($(git rev-parse --short "$1")), B: this tree ($(git rev-parse --short HEAD)$(git diff --quiet || echo ', modified'))"
}

# Starts the release ingest binary on 127.0.0.1:PORT with the benchmarks'
# source and its store in $WORK/STORE, and waits until it answers; its pid
# is SERVER_PID, its warnings go to $WORK/server-PORT.log. INGEST_BIN
# names another build of the binary (an older revision's, to compare).
start_server() { # port store
  { printf '[server]\nlisten = "127.0.0.1:%s"\n[store]\npath = "%s"\n' "$1" "$WORK/$2"; bench_sources; } > "$WORK/bench.toml"
  RUST_LOG=warn "${INGEST_BIN:-$BIN/tributary-ingest}" --config "$WORK/bench.toml" >>"$WORK/server-$1.log" 2>&1 &
  SERVER_PID=$!
  until curl -sf "http://127.0.0.1:$1/healthz" >/dev/null; do sleep 0.005; done
}

# Identifies the load generator's 10,000 users (user-0 .. user-9999) on the
# server on PORT, 100 identify calls per request to the receive URL, so that
# each trigger of the load writes its workflow run instead of finding its
# recipient never identified. A store trains its compression dictionary on
# the first texts it stores (docs/store.md): one second of the load comes
# first (numbered from 10^9, apart from the measured runs' events), so the
# dictionary learns the load's events rather than the identify calls. With
# BENCH_IDENTIFIED=1, bench-ingest.sh and bench-ab.sh do this after a
# server's start-up and idle readings, before the measured load
# (`identify_if_asked`).
identify_users() { # port loadgen
  "$2" run --url "http://127.0.0.1:$1/integrations/receive/$TOKEN" --connections 16 --seconds 1 \
    --batch 100 --shape array --first 1000000000 >/dev/null
  local batch user
  for batch in $(seq 0 99); do
    for user in $(seq $((batch * 100)) $((batch * 100 + 99))); do
      printf '{"type":"identify","userId":"user-%d","messageId":"identify-%d","traits":{"email":"user-%d@example.org","name":"User %d"}},' \
        "$user" "$user" "$user" "$user"
    done | sed 's/^/[/; s/,$/]/' |
      curl -sf -o /dev/null -H 'content-type: application/json' --data-binary @- \
        "http://127.0.0.1:$1/integrations/receive/$TOKEN" || { echo "identify_users: request failed" >&2; return 1; }
  done
}

# `identify_users` when BENCH_IDENTIFIED=1.
identify_if_asked() { # port loadgen
  if [ "${BENCH_IDENTIFIED:-}" = 1 ]; then identify_users "$1" "$2"; fi
}

# A metric of the server on PORT, summed over its labels.
metric_total() { # port name
  curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 ~ "^"m {s += $2} END {printf "%d", s}'
}

# Sectors written so far to the block device holding DIR. The bytes per event
# the load generator reads from /proc/PID/io are counted when a page of the
# page cache turns dirty, and with large folios (ext4 on recent kernels) a
# small write into a large cached file counts the whole folio: on a store of
# a million events it claimed ten times what reached the device, until the
# intake journal's appends bypassed the page cache (docs/PERFORMANCE.md).
# On a quiet machine the device's own counter is the figure to trust.
device_sectors() { # dir
  local dev; dev=$(basename "$(df --output=source "$1" | tail -1)")
  awk '{print $7}' "/sys/class/block/$dev/stat"
}

# Bytes the device took per event of a load generator run, from two
# device_sectors readings and the run's output.
device_bytes_per_event() { # sectors-before sectors-after loadgen-output
  awk -v a="$1" -v b="$2" '/^events in 2xx answers:/ {n = $5} END {if (n > 0) printf "%d\n", (b - a) * 512 / n}' "$3"
}

# The share of CPU time the host took from this machine (steal) between
# two readings of cpu_times: a benchmark run with more than a few percent
# is measuring the host, not the program.
cpu_times() { awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print t, $9}' /proc/stat; }
steal_percent() { # "total steal" before, "total steal" after
  echo "$1 $2" | awk '{ if ($3 > $1) printf "%.1f", 100 * ($4 - $2) / ($3 - $1); else printf "0" }'
}

# The store steps of the server on PORT (tributary_store_sqlite_step_seconds,
# a histogram) as cumulative counts, one line per step: the step, the
# count of steps taking more than 10 ms, more than 50 ms, and in all.
step_counts() { # port
  curl -s "http://127.0.0.1:$1/metrics" | awk '
    /^tributary_store_sqlite_step_seconds_(bucket|count)\{/ {
      match($0, /step="[a-z_]+"/); step = substr($0, RSTART + 6, RLENGTH - 7)
      if ($0 ~ /_count/) all[step] = $2
      if ($0 ~ /le="0.01"/) to10[step] = $2
      if ($0 ~ /le="0.05"/) to50[step] = $2
    }
    END { for (s in all) print s, all[s] - to10[s], all[s] - to50[s], all[s] }'
}

# What the steps did between two step_counts readings.
step_counts_between() { # before after
  awk 'NR == FNR {a[$1] = $2; b[$1] = $3; c[$1] = $4; next}
    $1 != "" {printf "%s %d (%d over 10 ms, %d over 50 ms); ", $1, $4 - c[$1], $2 - a[$1], $3 - b[$1]}
    END {print ""}' <(echo "$1") <(echo "$2")
}

# The server on PORT's answers on ROUTE so far, as "in-all over-10ms"
# (tributary_request_duration_seconds, a histogram, summed over outcomes).
answer_counts() { # port route
  curl -s "http://127.0.0.1:$1/metrics" | awk -v r="route=\"$2\"" '
    index($0, "tributary_request_duration_seconds_") == 1 && index($0, r) {
      if ($0 ~ /_count\{/) all += $2
      if ($0 ~ /le="0.01"/) fast += $2
    }
    END { printf "%d %d\n", all, all - fast }'
}

# How many answers the server gave between two answer_counts readings, and
# how many of them took more than 10 ms inside the server.
answer_counts_between() { # before after
  echo "$1 $2" | awk '{n = $3 - $1; slow = $4 - $2; printf "%d answers, %d over 10 ms inside the server (%.2f%%)\n", n, slow, (n > 0 ? 100 * slow / n : 0)}'
}

rate_of() { awk '/^throughput:/ {print $2}' "$1"; }

# Waits until the outbox of the servers on PORTS (one port, or several in one
# argument: their counters are summed) holds no action (every action
# queued was taken by a worker; actions run at append never enter it), at
# most MAX seconds (300), and prints the seconds it waited. Events are answered before
# their actions run, so a run's events/s alone can hide a backlog that the
# workers take seconds to clear after it.
outbox_drain() { # ports [max]
  local t0; t0=$(date +%s%N)
  local pushed popped p
  for _ in $(seq $(( ${2:-300} * 10 ))); do
    pushed=0; popped=0
    for p in $1; do
      pushed=$((pushed + $(metric_total "$p" tributary_outbox_pushed_total)))
      popped=$((popped + $(metric_total "$p" tributary_outbox_popped_total)))
    done
    [ "$pushed" -le "$popped" ] && break
    sleep 0.1
  done
  awk -v t="$(( $(date +%s%N) - t0 ))" 'BEGIN {printf "%.1f\n", t / 1e9}'
}

# Events/s with their actions run: a run's events (summed over its load
# generators' outputs) over its seconds plus the seconds its outbox took to drain.
done_rate() { # seconds drain-seconds loadgen-output...
  local s=$1 d=$2; shift 2
  awk -v s="$s" -v d="$d" '/^events in 2xx answers:/ {n += $5} END {printf "%d\n", n / (s + d)}' "$@"
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# The server's CPU per event in µs over a run, from the cpu_ticks it used.
# It moves less with the machine's load than events/s does: a second figure
# to compare two builds by.
cpu_per_event() { # ticks events-per-second seconds
  awk -v t="$1" -v hz="$(getconf CLK_TCK)" -v n="$2" -v s="$3" 'BEGIN {printf "%.1f\n", t / hz * 1e6 / (n * s)}'
}
median() { sort -n | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

run_one() { # name round
  {
    printf '[server]\nlisten = "127.0.0.1:9091"\n[store]\npath = "%s"\n' "$WORK/data-$1-$2"
    cat "$WORK/$1.body"
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
  cpu_per_event "$(( $(cpu_ticks "$pid") - cpu0 ))" "$(rate_of "$WORK/$1-$2")" "$SECS" > "$WORK/cpu-$1-$2"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "round $2 $1: $(rate_of "$WORK/$1-$2") events/s, $(cat "$WORK/cpu-$1-$2") µs server CPU per event (start-up $started ms, idle RSS $rss MiB, $(grep -m1 -i 'p99' "$WORK/$1-$2" | xargs))"
}

# Alternates configurations `a` and `b` for ROUNDS rounds and prints the
# median ratios a / b.
alternate() { # a b rounds
  local a=$1 b=$2 rounds=$3
  for round in $(seq "$rounds"); do
    # Alternate which goes first, so neither always meets a warmer machine.
    if [ $((round % 2)) -eq 1 ]; then
      run_one "$b" "$round"; run_one "$a" "$round"
    else
      run_one "$a" "$round"; run_one "$b" "$round"
    fi
    echo "ratio $a / $b, round $round: $(awk -v x="$(rate_of "$WORK/$a-$round")" -v y="$(rate_of "$WORK/$b-$round")" 'BEGIN {printf "%.3f", x / y}')"
  done
  echo "== summary over $rounds rounds, load average now $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "$b events/s: $(for r in $(seq "$rounds"); do rate_of "$WORK/$b-$r"; done | tr '\n' ' ')"
  echo "$a events/s: $(for r in $(seq "$rounds"); do rate_of "$WORK/$a-$r"; done | tr '\n' ' ')"
  echo "server CPU per event, µs, $b: $(cat "$WORK"/cpu-"$b"-* | tr '\n' ' ')$a: $(cat "$WORK"/cpu-"$a"-* | tr '\n' ' ')"
  echo "median ratio $a / $b: $(for r in $(seq "$rounds"); do awk -v x="$(rate_of "$WORK/$a-$r")" -v y="$(rate_of "$WORK/$b-$r")" 'BEGIN {printf "%.3f\n", x / y}'; done | median)"
  echo "median server CPU per event $a / $b: $(awk -v x="$(cat "$WORK"/cpu-"$a"-* | median)" -v y="$(cat "$WORK"/cpu-"$b"-* | median)" 'BEGIN {printf "%.3f", x / y}')"
}
