#!/usr/bin/env bash
# What usage counting costs per request, counted in instructions rather than seconds
# (`make usage-cost`; `make loadtest` gives the wall-clock view, which moves ±15 % here).
#
# Seeds a fresh SQLite database as the load test does (100 flags, then 1,000; 100,000 companies
# through POST /bulk), then runs the release server under `valgrind --tool=callgrind` with
# instrumentation off until the server is up, sends the same sequence of GET /features/evaluated
# requests (one connection, each for another of the 100,000 companies and users) with counting on
# and off (`--count-usage`), and reads the instructions the whole process executed from the moment
# the requests start to its exit, graceful shutdown included: the request path, the counters, the
# flusher's collecting and writing (every 5 s and at shutdown) — everything counting adds.
# Instruction counts do not move with what else the machine does, so a few per cent show.
#
# "Cold": every id is new to the server's day (the most counting ever costs). "Warm": the same
# requests were sent once before instrumentation started, so every id was seen already that day
# (a server's usual state). Each case runs twice to show how far the counts repeat. Puts a
# "## Usage counting in instructions" section in BENCHMARKS.md in place of the previous one.
#
# Settings (environment): USAGE_IR_REQUESTS (requests per run, default 3000),
# LOADTEST_SKIP_BUILD=1, LOADTEST_NO_WRITE=1.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

requests="${USAGE_IR_REQUESTS:-3000}"
companies=100000
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
wait_http() { for _ in $(seq 1200); do curl -fs -o /dev/null "$1" && return 0; sleep 0.25; done; return 1; }
export NO_COLOR=1
db="sqlite://$work/gatehouse.db"
port="$(free_port)"
base="http://127.0.0.1:$port"

python3 scripts/loadtest/generate.py flags "$work"
"$gatehouse" import "$work/flags-100.json" --database-url "$db" >/dev/null
publishable="$("$gatehouse" keys list --database-url "$db" | awk -F'\t' '$1 == "production" && $2 == "publishable" { print $3; exit }')"
RUST_LOG=warn LEPTOS_SITE_ROOT=target/site "$gatehouse" serve --addr "127.0.0.1:$port" --database-url "$db" >"$work/seed.log" 2>&1 &
server_pid=$!
wait_http "$base/healthz"
python3 scripts/loadtest/generate.py companies "$base" "$publishable" "$companies" >&2
kill -TERM "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""

# Sends the requests of SEED, one after another on one connection; fails on any answer but 200.
drive() { # SEED
    python3 - "$base" "$publishable" "$requests" "$companies" "$1" <<'PY'
import http.client, random, sys, urllib.parse
base, key, count, companies, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
host = urllib.parse.urlparse(base)
connection = http.client.HTTPConnection(host.hostname, host.port, timeout=120)
ids = random.Random(seed)
for _ in range(count):
    n = ids.randrange(companies)
    connection.request("GET", f"/features/evaluated?context.company.id=company-{n:06d}&context.user.id=user-{n:06d}",
                       headers={"Authorization": f"Bearer {key}"})
    answer = connection.getresponse()
    answer.read()
    if answer.status != 200:
        sys.exit(f"answer {answer.status}")
PY
}

# Instructions the server executed from the first measured request to its exit.
measure() { # COUNTING(true|false) WARM(0|1) SEED
    local out="$work/callgrind.out"
    rm -f "$out"
    RUST_LOG=warn LEPTOS_SITE_ROOT=target/site valgrind --tool=callgrind --instr-atstart=no \
        --callgrind-out-file="$out" "$gatehouse" serve --addr "127.0.0.1:$port" --database-url "$db" \
        --count-usage "$1" >"$work/server.log" 2>&1 &
    server_pid=$!
    wait_http "$base/healthz"
    [ "$2" = 1 ] && drive "$3"
    callgrind_control -i on "$server_pid" >/dev/null
    drive "$3"
    kill -TERM "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    sed -n 's/^summary: *\([0-9]*\).*/\1/p; s/^totals: *\([0-9]*\).*/\1/p' "$out" | head -1
}

rows=""
seed=1
for flags in 100 1000; do
    [ "$flags" = 1000 ] && "$gatehouse" import "$work/flags-1000.json" --database-url "$db" >/dev/null
    for warm in 0 1; do
        label="$flags flags, $([ "$warm" = 0 ] && echo cold || echo warm)"
        on=(); off=()
        for round in 1 2; do
            seed=$((seed + 1))
            for counting in true false; do
                ir="$(measure "$counting" "$warm" "$seed")"
                echo "== $label, counting $counting, round $round: $ir instructions" >&2
                if [ "$counting" = true ]; then on+=("$ir"); else off+=("$ir"); fi
            done
        done
        rows+="$(python3 - "$label" "$requests" "${on[@]}" "${off[@]}" <<'PY'
import sys
label, requests = sys.argv[1], int(sys.argv[2])
on, off = [int(x) for x in sys.argv[3:5]], [int(x) for x in sys.argv[5:7]]
per = lambda xs: " / ".join(f"{x / requests / 1000:.1f} k" for x in xs)
costs = [a / b - 1 for a, b in zip(on, off)]
print(f"| GET /features/evaluated, {label} | {per(on)} | {per(off)} | "
      + " / ".join(f"{c * 100:.1f} %" for c in costs) + " |")
PY
)"$'\n'
    done
done

section="## Usage counting in instructions

\`scripts/usage-instructions.sh\` (\`make usage-cost\`), $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD),
SQLite, release build under \`valgrind --tool=callgrind\`. Per run: a new server with \`--count-usage true\` or
\`false\` on the same database ($companies companies), $requests GET /features/evaluated requests one after another,
each for another company and user; the count is every instruction the server process executed from the first
measured request to its exit (request path, counters, the flusher's collecting and writes, the graceful shutdown's
last flush), divided by the requests. \"Cold\": all ids new to the server's day; \"warm\": the same requests sent once
before measuring. Two rounds per case (different ids), each on and off; the cost is on / off − 1 of each round.

| Endpoint | counting on, instructions per request (rounds 1 / 2) | counting off | cost (rounds 1 / 2) |
|---|---|---|---|
$rows"
echo "$section"
if [ "${LOADTEST_NO_WRITE:-}" != 1 ]; then
    python3 - "$section" <<'PY'
import re, sys
section = sys.argv[1].rstrip() + "\n"
text = open("BENCHMARKS.md").read()
pattern = re.compile(r"^## Usage counting in instructions\n.*?(?=^## |\Z)", re.S | re.M)
text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + section
open("BENCHMARKS.md", "w").write(text)
PY
fi
