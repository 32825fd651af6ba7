#!/usr/bin/env bash
# Load benchmark of the public API (`make loadtest`).
#
# Builds the release server (cargo leptos) and a minimal axum server (scripts/baseline, the
# machine's ceiling), starts Gatehouse on a fresh SQLite database in a temporary directory, seeds
# it with `gatehouse import` (30 segments, then 100 and later 1,000 flags; scripts/loadtest/
# generate.py) and 100,000 companies through POST /bulk (100 requests of 1,000 items), then drives
# each endpoint with wrk on loopback:
#   1. the baseline (GET, constant JSON body);
#   2. GET /features/evaluated for one company and user, with 100 flags;
#   3. the same with 1,000 flags (imported while the server runs);
#   4. POST /ofrep/v1/evaluate/flags (bulk OFREP evaluation), 1,000 flags.
# Each gets a short warm-up, a full-load run (requests/s, p50, p99) and a run paced at 80 % of
# that rate (scripts/loadtest/wrk.lua) for its p99. Last, the server's VmRSS and VmHWM (peak
# RSS). Prints a markdown section and puts it in BENCHMARKS.md in place of the previous
# "## Load test" section (the rest of the file is kept).
#
# Settings (environment): LOADTEST_DURATION (seconds per run, default 15), LOADTEST_THREADS (2),
# LOADTEST_CONNECTIONS (32), LOADTEST_SKIP_BUILD=1 to use the binaries as they are,
# LOADTEST_NO_WRITE=1 to leave BENCHMARKS.md alone.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

duration="${LOADTEST_DURATION:-15}"
threads="${LOADTEST_THREADS:-2}"
connections="${LOADTEST_CONNECTIONS:-32}"
warmup=3
companies=100000

if ! command -v wrk >/dev/null; then
    echo "wrk is missing; installing it (apt-get)" >&2
    apt-get update -qq && apt-get install -y -qq wrk
fi

if [ "${LOADTEST_SKIP_BUILD:-}" != 1 ]; then
    PATH="$root/tools/node_modules/.bin:$PATH" cargo leptos build --release
    CARGO_TARGET_DIR="$root/target/baseline" \
        cargo build --release --locked --manifest-path scripts/baseline/Cargo.toml
fi
gatehouse="$root/target/release/gatehouse"
baseline="$root/target/baseline/release/gatehouse-baseline"
test -x "$gatehouse" && test -x "$baseline" && test -d target/site

work="$(mktemp -d)"
server_pid=""
baseline_pid=""
cleanup() {
    [ -n "$baseline_pid" ] && kill "$baseline_pid" 2>/dev/null || true
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_http() { # URL: wait until it answers 200 (30 s at most)
    for _ in $(seq 300); do
        curl -fs -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "no answer from $1" >&2
    return 1
}

load_at_start="$(cut -d' ' -f1-3 /proc/loadavg)"
db="sqlite://$work/gatehouse.db"
export NO_COLOR=1

echo "== seeding" >&2
python3 scripts/loadtest/generate.py flags "$work"
import_started=$(date +%s%N)
"$gatehouse" import "$work/flags-100.json" --database-url "$db" >/dev/null
import_100_ms=$(( ($(date +%s%N) - import_started) / 1000000 ))
publishable="$("$gatehouse" keys list --database-url "$db" | awk -F'\t' '$1 == "production" && $2 == "publishable" && !found { print $3; found = 1 }')"
secret="$("$gatehouse" keys create --environment production --database-url "$db" | tail -n1)"

port="$(free_port)"
base="http://127.0.0.1:$port"
LEPTOS_SITE_ROOT=target/site "$gatehouse" serve --addr "127.0.0.1:$port" --database-url "$db" \
    >"$work/server.log" 2>&1 &
server_pid=$!
wait_http "$base/healthz"

bulk_started=$(date +%s%N)
python3 scripts/loadtest/generate.py companies "$base" "$publishable" "$companies" >&2
bulk_ms=$(( ($(date +%s%N) - bulk_started) / 1000000 ))
rss_after_seed_kb=$(awk '/^VmRSS/ { print $2 }' "/proc/$server_pid/status")

company="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["company"])' "$work/context.json")"
user="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["user"])' "$work/context.json")"
evaluated_path="/features/evaluated?context.company.id=$company&context.user.id=$user"
printf '{"context":{"targetingKey":"%s","company":{"id":"%s"}}}' "$user" "$company" >"$work/ofrep.json"

# Flags in the answer, whether stored attributes were used, and how many are enabled.
describe_evaluated() {
    curl -fs -H "Authorization: Bearer $publishable" "$base$evaluated_path" | python3 -c '
import json, sys
answer = json.load(sys.stdin)
features = answer["features"]
print(len(features), str(answer["remoteContextUsed"]).lower(),
      sum(1 for f in features.values() if f["isEnabled"]))'
}

results="$work/results.tsv" # name, rps, p50_us, p99_us, paced target, paced achieved, paced p99, bytes
: >"$results"

run_wrk() { # URL, rate per thread (0: unpaced); prints the LOADTEST line's fields
    local out
    out="$(LOADTEST_RATE_PER_THREAD="$2" wrk -t"$threads" -c"$connections" -d"${3:-$duration}s" \
        --latency -s scripts/loadtest/wrk.lua "$1")"
    echo "$out" >&2
    local line
    line="$(grep '^LOADTEST ' <<<"$out")"
    if ! grep -q ' non2xx=0 socket_errors=0$' <<<"$line"; then
        echo "errors during the run: $line" >&2
        return 1
    fi
    echo "$line"
}

field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$2"; }

measure() { # NAME URL BYTES (LOADTEST_METHOD, LOADTEST_BODY_FILE, LOADTEST_HEADER exported)
    local name="$1" url="$2" bytes="$3"
    echo "== $name: warm-up ${warmup}s" >&2
    run_wrk "$url" 0 "$warmup" >/dev/null
    echo "== $name: full load, ${duration}s" >&2
    local full rps
    full="$(run_wrk "$url" 0)"
    rps="$(field rps "$full")"
    local per_thread target
    per_thread=$(python3 -c "print(max(1, int($rps * 0.8 / $threads)))")
    target=$((per_thread * threads))
    echo "== $name: paced at $target requests/s (80 %), ${duration}s" >&2
    local paced
    paced="$(run_wrk "$url" "$per_thread")"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$rps" "$(field p50_us "$full")" \
        "$(field p99_us "$full")" "$target" "$(field rps "$paced")" "$(field p99_us "$paced")" \
        "$bytes" >>"$results"
}

# 1. The ceiling: a constant JSON body from a bare axum server (Gatehouse idles meanwhile).
baseline_port="$(free_port)"
"$baseline" "127.0.0.1:$baseline_port" &
baseline_pid=$!
wait_http "http://127.0.0.1:$baseline_port/"
bytes=$(curl -fs -o /dev/null -w '%{size_download}' "http://127.0.0.1:$baseline_port/")
export LOADTEST_METHOD=GET LOADTEST_BODY_FILE="" LOADTEST_HEADER=""
measure "baseline: constant JSON (axum)" "http://127.0.0.1:$baseline_port/" "$bytes"
kill "$baseline_pid"
wait "$baseline_pid" 2>/dev/null || true
baseline_pid=""

# 2. /features/evaluated, 100 flags.
read -r flags_100 remote_100 enabled_100 <<<"$(describe_evaluated)"
test "$flags_100" = 100 && test "$remote_100" = true
bytes=$(curl -fs -o /dev/null -w '%{size_download}' -H "Authorization: Bearer $publishable" "$base$evaluated_path")
export LOADTEST_HEADER="Authorization: Bearer $publishable"
measure "GET /features/evaluated, 100 flags" "$base$evaluated_path" "$bytes"

# 3. Import the other 900 flags into the running server's database; it picks them up by itself.
import_started=$(date +%s%N)
"$gatehouse" import "$work/flags-1000.json" --database-url "$db" >/dev/null
import_1000_ms=$(( ($(date +%s%N) - import_started) / 1000000 ))
for _ in $(seq 300); do
    read -r flags_1000 remote_1000 enabled_1000 <<<"$(describe_evaluated)"
    [ "$flags_1000" = 1000 ] && break
    sleep 0.1
done
test "$flags_1000" = 1000 && test "$remote_1000" = true
bytes=$(curl -fs -o /dev/null -w '%{size_download}' -H "Authorization: Bearer $publishable" "$base$evaluated_path")
measure "GET /features/evaluated, 1,000 flags" "$base$evaluated_path" "$bytes"

# 4. OFREP bulk evaluation (secret key, as a server-side provider sends it).
export LOADTEST_METHOD=POST LOADTEST_BODY_FILE="$work/ofrep.json" LOADTEST_HEADER="X-API-Key: $secret"
ofrep_flags=$(curl -fs -H "X-API-Key: $secret" -H 'Content-Type: application/json' \
    --data-binary "@$work/ofrep.json" "$base/ofrep/v1/evaluate/flags" \
    | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["flags"]))')
test "$ofrep_flags" = 1000
bytes=$(curl -fs -o /dev/null -w '%{size_download}' -H "X-API-Key: $secret" \
    -H 'Content-Type: application/json' --data-binary "@$work/ofrep.json" "$base/ofrep/v1/evaluate/flags")
measure "POST /ofrep/v1/evaluate/flags, 1,000 flags" "$base/ofrep/v1/evaluate/flags" "$bytes"

rss_kb=$(awk '/^VmRSS/ { print $2 }' "/proc/$server_pid/status")
hwm_kb=$(awk '/^VmHWM/ { print $2 }' "/proc/$server_pid/status")
load_at_end="$(cut -d' ' -f1-3 /proc/loadavg)"

section="$(
    RESULTS="$results" DURATION="$duration" THREADS="$threads" CONNECTIONS="$connections" \
    WARMUP="$warmup" COMPANIES="$companies" LOAD_START="$load_at_start" LOAD_END="$load_at_end" \
    RSS_SEED_KB="$rss_after_seed_kb" RSS_KB="$rss_kb" HWM_KB="$hwm_kb" \
    IMPORT_100_MS="$import_100_ms" IMPORT_1000_MS="$import_1000_ms" BULK_MS="$bulk_ms" \
    ENABLED_100="$enabled_100" ENABLED_1000="$enabled_1000" \
    COMMIT="$(git rev-parse --short HEAD)$(git status --porcelain -- src Cargo.toml Cargo.lock | grep -q . && echo " with uncommitted changes to src/")" WRK_VERSION="$(wrk -v 2>&1 | head -n1 | cut -d' ' -f2)" \
    RUSTC="$(rustc --version | cut -d' ' -f2)" \
    SKIPPED_BUILD="${LOADTEST_SKIP_BUILD:-}" \
    CPU="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
    CORES="$(nproc)" MEM_GB="$(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)" \
    python3 scripts/loadtest/report.py
)"
echo
echo "$section"
if [ "${LOADTEST_NO_WRITE:-}" != 1 ]; then
    SECTION="$section" python3 scripts/loadtest/report.py --write BENCHMARKS.md
    echo >&2
    echo "BENCHMARKS.md: \"## Load test\" section updated" >&2
fi
