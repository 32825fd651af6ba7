#!/usr/bin/env bash
# What usage counting costs (`make loadtest` runs it after scripts/loadtest.sh; alone:
# scripts/usage-overhead.sh). Seeds a fresh SQLite database as the load test does (100 flags,
# then 1,000; 100,000 companies through POST /bulk), then measures GET /features/evaluated with
# wrk, each request for a random one of the 100,000 companies, alternately with counting on and
# off (`--count-usage`), the same binary and database: 5 runs of each (LOADTEST_ROUNDS), the
# median kept. The
# counting server's log gives the time each flush took (rows written, ms). Puts a
# "## Usage counting" section in BENCHMARKS.md in place of the previous one.
#
# Settings (environment): LOADTEST_DURATION (seconds per run, default 10), LOADTEST_ROUNDS (5),
# LOADTEST_THREADS (2),
# LOADTEST_CONNECTIONS (32), LOADTEST_WARM_SECONDS (40), LOADTEST_SKIP_BUILD=1, LOADTEST_NO_WRITE=1.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

duration="${LOADTEST_DURATION:-10}"
rounds="${LOADTEST_ROUNDS:-5}"
threads="${LOADTEST_THREADS:-2}"
connections="${LOADTEST_CONNECTIONS:-32}"
companies=100000
command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
if [ "${LOADTEST_SKIP_BUILD:-}" != 1 ]; then
    PATH="$root/tools/node_modules/.bin:$PATH" cargo leptos build --release
fi
gatehouse="$root/target/release/gatehouse"
work="$(mktemp -d)"
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 300); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done; return 1; }
export NO_COLOR=1
db="sqlite://$work/gatehouse.db"
port="$(free_port)"
base="http://127.0.0.1:$port"

start() { # COUNTING(true|false) LOG
    RUST_LOG="warn,gatehouse::service::flusher=debug" LEPTOS_SITE_ROOT=target/site "$gatehouse" serve \
        --addr "127.0.0.1:$port" --database-url "$db" --count-usage "$1" >"$2" 2>&1 &
    server_pid=$!
    wait_http "$base/healthz"
}
stop() {
    kill -TERM "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

python3 scripts/loadtest/generate.py flags "$work"
"$gatehouse" import "$work/flags-100.json" --database-url "$db" >/dev/null
publishable="$("$gatehouse" keys list --database-url "$db" | awk -F'\t' '$1 == "production" && $2 == "publishable" && !found { print $3; found = 1 }')"
start true "$work/seed.log"
python3 scripts/loadtest/generate.py companies "$base" "$publishable" "$companies" >&2
stop

path="/features/evaluated?context.company.id=company-%06d&context.user.id=user-%06d"
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$server_pid/stat"; }
rps() { # one run; prints requests/s and the server's CPU time per request (µs)
    local out before after rate
    before="$(cpu_ticks)"
    out="$(LOADTEST_HEADER="Authorization: Bearer $publishable" LOADTEST_SPREAD=$companies \
        wrk -t"$threads" -c"$connections" -d"${duration}s" --latency -s scripts/loadtest/wrk.lua "$base$path")"
    after="$(cpu_ticks)"
    grep -q ' non2xx=0 socket_errors=0$' <<<"$(grep '^LOADTEST ' <<<"$out")" || { echo "$out" >&2; return 1; }
    rate="$(sed -n 's/^LOADTEST rps=\([0-9.]*\).*/\1/p' <<<"$out")"
    python3 -c "import os; t = os.sysconf('SC_CLK_TCK'); print($rate, round(($after - $before) / t * 1e6 / ($rate * $duration), 1))"
}
# The share of the counting server's CPU samples (perf, user and kernel) in the counting code's own
# functions (runtime::usage, runtime::sketch, the HyperLogLog crate, xxh3, the flusher's collecting),
# over one extra run of the case that is not among the timed rounds; "-" without perf.
usage_share() { # WARMUP
    command -v perf >/dev/null || { echo "-"; return; }
    start true "$work/perf-server.log"
    LOADTEST_HEADER="Authorization: Bearer $publishable" LOADTEST_SPREAD=$companies \
        wrk -t"$threads" -c"$connections" -d"$1s" -s scripts/loadtest/wrk.lua "$base$path" >/dev/null
    LOADTEST_HEADER="Authorization: Bearer $publishable" LOADTEST_SPREAD=$companies \
        wrk -t"$threads" -c"$connections" -d"${duration}s" -s scripts/loadtest/wrk.lua "$base$path" >/dev/null &
    local wrk_pid=$!
    perf record -q -F 999 -p "$server_pid" -o "$work/perf.data" -- sleep "$((duration - 1))" >/dev/null 2>&1 || true
    wait "$wrk_pid"
    stop
    perf report -i "$work/perf.data" --no-children --sort symbol -g none --stdio 2>/dev/null \
        | awk '/%/ && /runtime::usage::|runtime::sketch::|hyperloglogplus|xxh3|add_exposures/ { sub("%", "", $1); s += $1 } END { printf "%.2f %%", s }'
}
median() { python3 -c 'import statistics, sys; print(round(statistics.median(float(x) for x in sys.argv[1:])))' "$@"; }

rows=""
# Each case: flags, then the seconds of the same traffic before the measured run. "cold": 3 s, so
# most ids are new to the server's day; "warm": $warm s first, so most were seen already today
# (a server's usual state after the first minutes of a day).
warm="${LOADTEST_WARM_SECONDS:-40}"
for case in "100 3" "1000 3" "1000 $warm"; do
    read -r flags warmup <<<"$case"
    [ "$flags" = 1000 ] && [ "$warmup" = 3 ] && "$gatehouse" import "$work/flags-1000.json" --database-url "$db" >/dev/null
    label="$flags flags, $([ "$warmup" = 3 ] && echo cold || echo "warm (${warmup} s first)")"
    on=(); off=(); on_cpu=(); off_cpu=()
    for round in $(seq "$rounds"); do
        for counting in true false; do
            start "$counting" "$work/server-$flags-$warmup-$counting-$round.log"
            LOADTEST_HEADER="Authorization: Bearer $publishable" LOADTEST_SPREAD=$companies \
                wrk -t"$threads" -c"$connections" -d"${warmup}s" -s scripts/loadtest/wrk.lua "$base$path" >/dev/null
            read -r r cpu <<<"$(rps)"
            echo "== $label, counting $counting, round $round: $r requests/s, $cpu µs CPU per request" >&2
            hwm="$(awk '/^VmHWM/ { print $2 }' "/proc/$server_pid/status")"
            if [ "$counting" = true ]; then on+=("$r"); on_cpu+=("$cpu"); on_hwm="$hwm"; else off+=("$r"); off_cpu+=("$cpu"); off_hwm="$hwm"; fi
            stop
        done
    done
    on_median="$(median "${on[@]}")"
    off_median="$(median "${off[@]}")"
    cost="$(python3 -c "print(f'{(1 - $on_median / $off_median) * 100:.1f}')")"
    on_cpu_median="$(python3 -c 'import statistics, sys; print(round(statistics.median(float(x) for x in sys.argv[1:]), 1))' "${on_cpu[@]}")"
    off_cpu_median="$(python3 -c 'import statistics, sys; print(round(statistics.median(float(x) for x in sys.argv[1:]), 1))' "${off_cpu[@]}")"
    cpu_cost="$(python3 -c "print(f'{($on_cpu_median / $off_cpu_median - 1) * 100:.1f}')")"
    flushes="$(cat "$work"/server-$flags-$warmup-true-*.log \
        | sed -n 's/.*usage flushed.*rows=\([0-9]*\).*sketches=\([a-z]*\).*collect_ms=\([0-9.]*\).*write_ms=\([0-9.]*\).*/\1 \2 \3 \4/p')"
    flush_max="$(awk 'BEGIN { c = 0; m = 0; s = 0 }
        $2 == "false" { if ($4 > m) { m = $4; r = $1 } }
        $2 == "true" { if ($4 > s) { s = $4; q = $1 } }
        { if ($3 > c) c = $3 }
        END { printf "counts %.1f ms (%d rows); with sketches %.1f ms (%d rows); collecting %.1f ms", m, r, s, q, c }' <<<"$flushes")"
    flush_count="$(wc -l <<<"$flushes" | tr -d ' ')"
    share="$(usage_share "$warmup")"
    rows+="| GET /features/evaluated, $label | ${on[*]} | ${off[*]} | $on_median | $off_median | $cost % | $share | $on_cpu_median / $off_cpu_median µs ($cpu_cost %) | $flush_max, of $flush_count flushes | $((on_hwm / 1024)) / $((off_hwm / 1024)) MB |"$'\n'
done

section="## Usage counting

\`scripts/usage-overhead.sh\` (run by \`make loadtest\`), $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD),
SQLite, $threads wrk threads × $connections connections, ${duration} s per run, each request for a random one of
$companies companies (and users), so the counters hold many distinct ids. The same binary and database with
\`--count-usage true\` and \`false\`, alternated $rounds times; the cost is 1 − on/off of the medians. Each run starts
a new server. \"Cold\": 3 s of traffic before the measured run, so most ids are new to the server's day — the cost
of a day's first requests, the most counting ever costs. \"Warm\": ${warm} s of the same traffic first, so most ids
were seen already that day — a server's usual state. Requests per second move by ±10 % between runs here
(wrk and the server share the 2 cores), so the server's CPU time per request (utime + stime from /proc over the
measured run, divided by the requests) is given too; in the runs here it moved about as much as throughput. The
flush is the longest of the counting server's database writes as it logs them: the counts every 5 s (with the day
sketches that changed when they are at most 100), and the counts with all changed day sketches (every 60 s, and at
the graceful shutdown that ends each run: the runs are shorter than a minute, so that is the one logged); then the
longest time it took to turn the counters into rows and sketches (on a blocking thread, before the write). Peak RSS (VmHWM) is the last round's, counting on / off.
\"CPU samples in counting code\": \`perf record\` of the counting server over one more run of the case (not one of
the timed rounds), the share of its samples (user and kernel) in the counting code's own functions — runtime::usage,
runtime::sketch, the HyperLogLog crate, xxh3 — a figure that does not move with wrk's share of the cores; the
flush's database writes are not in it (they are the flush column).

| Endpoint | counting on, requests/s | counting off | median on | median off | cost | CPU samples in counting code | server CPU per request, on / off (cost) | longest flush write; collect | peak RSS on / off |
|---|---|---|---|---|---|---|---|---|---|
$rows"
echo "$section"
if [ "${LOADTEST_NO_WRITE:-}" != 1 ]; then
    python3 - "$section" <<'PY'
import re, sys
section = sys.argv[1].rstrip() + "\n"
text = open("BENCHMARKS.md").read()
pattern = re.compile(r"^## Usage counting\n.*?(?=^## |\Z)", re.S | re.M)
text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + section
open("BENCHMARKS.md", "w").write(text)
PY
fi
