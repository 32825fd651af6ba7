#!/usr/bin/env bash
# What usage counting costs per request, counted in instructions rather than seconds
# (`make usage-cost`; `make loadtest` gives the wall-clock view, which moves ±15 % here).
#
# Seeds a fresh SQLite database as the load test does (100 flags, then 1,000; 100,000 companies
# through POST /bulk), then runs the release server under `valgrind --tool=callgrind` with
# instrumentation off until the server is up, sends the same sequence of GET /features/evaluated
# requests (one connection, each for another of the 100,000 companies and users) with counting on
# and off (`--count-usage`), and reads from callgrind what the process executed from the first
# measured request to its exit: in all, in the request handler, in the flusher's collecting and in
# its writes. Instruction counts do not move with what else the machine does, so a few per cent
# show where wall-clock runs here move by ±15 %.
#
# "Cold": every id is new to the server's day (the most counting ever costs). "Warm": the same
# requests were sent once, and a flush taken, before instrumentation started (a server's usual
# state). Each case runs twice with other ids. Puts a "## Usage counting in instructions"
# section in BENCHMARKS.md in place of the previous one.
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
publishable="$("$gatehouse" keys list --database-url "$db" | awk -F'\t' '$1 == "production" && $2 == "publishable" && !found { print $3; found = 1 }')"
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

# Waits until the server has used no CPU for a second.
wait_idle() {
    local before=-1 now
    while now="$(awk '{ print $14 + $15 }' "/proc/$server_pid/stat")" && [ "$now" != "$before" ]; do
        before="$now"
        sleep 1
    done
}

# Runs one server under callgrind and prints, as instructions from the first measured request to
# the server's exit: the whole process, the request handler (`reflag::evaluated`, counting's call
# included), the flusher's collecting (`Usage::take`) and its writes (`usage::record`).
measure() { # COUNTING(true|false) WARM(0|1) SEED
    local out="$work/callgrind.out"
    rm -f "$out"
    RUST_LOG=warn LEPTOS_SITE_ROOT=target/site valgrind --tool=callgrind --instr-atstart=no \
        --callgrind-out-file="$out" "$gatehouse" serve --addr "127.0.0.1:$port" --database-url "$db" \
        --count-usage "$1" >"$work/server.log" 2>&1 &
    server_pid=$!
    wait_http "$base/healthz"
    wait_idle # the runtime loads the 100,000 companies in the background after start
    if [ "$2" = 1 ]; then
        drive "$3"
        sleep 6 # the flusher (every 5 s) takes the first exposures before the measuring starts
        wait_idle
    fi
    callgrind_control -i on "$server_pid" >/dev/null
    drive "$3"
    kill -TERM "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    callgrind_annotate --inclusive=yes --threshold=100 "$out" | python3 -c '
import re, sys
wanted = {"total": "PROGRAM TOTALS", "handler": "gatehouse::api::reflag::evaluated::{{closure}}",
          "take": "gatehouse::service::runtime::usage::Usage::take ", "record": "gatehouse::service::usage::record::{{closure}}"}
found = dict.fromkeys(wanted, 0)
for line in sys.stdin:
    for name, needle in wanted.items():
        if needle in line and not found[name]:
            found[name] = int(re.match(r"\s*([\d,]+)", line).group(1).replace(",", ""))
print(found["total"], found["handler"], found["take"], found["record"])'
}

rows=""
seed=1
for flags in 100 1000; do
    [ "$flags" = 1000 ] && "$gatehouse" import "$work/flags-1000.json" --database-url "$db" >/dev/null
    # Not measured: the first server on a new configuration did once-only work (about 3 billion
    # instructions in the runs here) inside the measured window.
    measure true 0 999 >/dev/null
    for warm in 0 1; do
        label="$flags flags, $([ "$warm" = 0 ] && echo cold || echo warm)"
        for round in 1 2; do
            seed=$((seed + 1))
            read -r on_total on_handler on_take on_record <<<"$(measure true "$warm" "$seed")"
            read -r off_total off_handler _ _ <<<"$(measure false "$warm" "$seed")"
            echo "== $label, round $round: on $on_total $on_handler $on_take $on_record; off $off_total $off_handler" >&2
            rows+="$(python3 - "$label" "$round" "$requests" "$on_total" "$off_total" "$on_handler" "$off_handler" "$on_take" "$on_record" <<'PY'
import sys
label, round_, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
on_total, off_total, on_handler, off_handler, take, record = (int(x) for x in sys.argv[4:10])
k = lambda x: f"{x / n / 1000:.1f} k"
cost = lambda a, b: f"{(a / b - 1) * 100:.1f} %"
print(f"| {label}, round {round_} | {k(on_total)} / {k(off_total)} ({cost(on_total, off_total)}) | "
      f"{k(on_handler)} / {k(off_handler)} ({cost(on_handler, off_handler)}) | "
      f"{k(on_handler - off_handler)} | {k(take)} | {k(record)} |")
PY
)"$'\n'
        done
    done
done

section="## Usage counting in instructions

\`scripts/usage-instructions.sh\` (\`make usage-cost\`), $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD),
SQLite, release build under \`valgrind --tool=callgrind\` (instructions, which do not move with the machine's load:
the same run twice counts within about 1 %). Per run a new server, \`--count-usage true\` or \`false\`, on the same
database ($companies companies); $requests GET /features/evaluated one after another on one connection, each for
another company and user. Counted from the first measured request to the server's exit (its graceful shutdown
writes the last counts), per request: the whole process; the request handler (\`reflag::evaluated\`, which
calls the counting); the flusher's collecting of exposures into the day's HyperLogLog sketches
(\`Usage::take\`, on a blocking thread) and its database writes (\`usage::record\`). \"Cold\": every id new to
the server's day, the most counting ever costs; \"warm\": the same requests sent once before, and one flush
taken, before measuring — a server's usual state once the day's ids have been seen.

| Case | whole process, on / off (cost) | request handler, on / off (cost) | counting on the request path | collecting into sketches | writing |
|---|---|---|---|---|---|
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
