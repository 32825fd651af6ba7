#!/usr/bin/env bash
# How long the admin pages take with a large installation (`make page-timing`): 10,000 flags (the
# load test's mix of targeting, imported with `gatehouse import`) and 100,000 companies (sent
# through POST /bulk), on SQLite, with the release build. Signs in as an admin, asks each page
# 3 times to warm up and then PAGE_TIMING_REQUESTS times (default 40) one after another, and
# reports the median, 95th percentile and slowest answer: the time from sending the request to
# the last byte of the server-rendered page on loopback (server time plus a loopback transfer).
# Puts a "## Admin pages" section in BENCHMARKS.md in place of the previous one.
#
# Settings (environment): PAGE_TIMING_FLAGS (default 10000), PAGE_TIMING_REQUESTS,
# LOADTEST_SKIP_BUILD=1, LOADTEST_NO_WRITE=1.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

flags="${PAGE_TIMING_FLAGS:-10000}"
requests="${PAGE_TIMING_REQUESTS:-40}"
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

python3 scripts/loadtest/generate.py manyflags "$work" "$flags"
started=$(date +%s)
"$gatehouse" import "$work/flags-$flags.json" --database-url "$db" >/dev/null
echo "imported $flags flags in $(( $(date +%s) - started )) s" >&2
echo "page-timing-password" | "$gatehouse" member add --email pm@example.com --role admin \
    --name "Pat" --password-stdin --database-url "$db" >/dev/null
publishable="$("$gatehouse" keys list --database-url "$db" | awk -F'\t' '$1 == "production" && $2 == "publishable" && !found { print $3; found = 1 }')"
RUST_LOG=warn LEPTOS_SITE_ROOT=target/site "$gatehouse" serve --addr "127.0.0.1:$port" --database-url "$db" \
    >"$work/server.log" 2>&1 &
server_pid=$!
wait_http "$base/healthz"
python3 scripts/loadtest/generate.py companies "$base" "$publishable" "$companies" >&2
sleep 3 # the runtime takes up the companies in the background

rows="$(python3 - "$base" "$requests" <<'PY'
import http.client, statistics, sys, time, urllib.parse
base, n = sys.argv[1], int(sys.argv[2])
host = urllib.parse.urlparse(base)
connection = http.client.HTTPConnection(host.hostname, host.port, timeout=120)

def send(method, path, body=None, headers=None):
    connection.request(method, path, body=body, headers=headers or {})
    answer = connection.getresponse()
    return answer, answer.read()

answer, _ = send("POST", "/api/public/sign_in",
                 "email=pm%40example.com&password=page-timing-password",
                 {"Content-Type": "application/x-www-form-urlencoded", "Origin": base})
cookie = "; ".join(c.split(";")[0] for c in answer.headers.get_all("Set-Cookie") or [])
if not cookie:
    sys.exit(f"signing in answered {answer.status} without a session")
pages = [
    ("Overview", "/"),
    ("Flags list (first page)", "/flags"),
    ("Flags list, search", "/flags?q=flag-99"),
    ("Board", "/flags?view=board"),
    ("Flag page (1,000 companies listed)", "/flags/flag-0002"),
    ("Flag page (rules and segments)", "/flags/flag-0009"),
    ("Segments", "/segments"),
    ("Companies", "/companies"),
    ("Company page (check access)", "/companies/company-000042"),
    ("Company page, enabled flags", "/companies/company-000042?result=enabled&page=1"),
    ("Audit log", "/audit"),
    ("Clean-up", "/cleanup"),
    ("Release stages", "/settings/stages"),
    ("API keys", "/settings/keys"),
    ("Members", "/settings/members"),
]
for label, path in pages:
    times = []
    for i in range(3 + n):
        started = time.perf_counter()
        answer, body = send("GET", path, headers={"Cookie": cookie})
        elapsed = (time.perf_counter() - started) * 1000
        if answer.status != 200:
            sys.exit(f"{path} answered {answer.status}")
        if i == 0:
            first = elapsed
        if i >= 3:
            times.append(elapsed)
    times.sort()
    p95 = times[max(0, int(round(0.95 * len(times))) - 1)]
    print(f"| {label} | `{path}` | {first:.1f} | {statistics.median(times):.1f} | {p95:.1f} | {times[-1]:.1f} | {len(body) // 1024} KB |")
    sys.stdout.flush()
PY
)"
echo "$rows" >&2

[ "${LOADTEST_NO_WRITE:-}" = 1 ] && exit 0
section="$(cat <<EOF
## Admin pages

\`scripts/page-timing.sh\` (\`make page-timing\`), $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD), SQLite,
release build, $flags flags (the load test's mix: company lists of up to 1,000 ids, segments, attribute
rules, rollouts, remote config) and $companies companies, signed in as an admin. Each page asked 3 times to
warm up, then $requests times one after another; milliseconds from sending the request to the last byte of the
server-rendered page on loopback. "First" is the first of the warm-up views: pages that keep what they
counted (segments, a flag's companies with access) pay for the counting there, and again after a change.
Two cores, shared with nothing else during the run.

| Page | Address | first ms | median ms | p95 ms | slowest ms | size |
|---|---|---|---|---|---|---|
$rows
EOF
)"
python3 - "$section" <<'PY'
import re, sys
section = sys.argv[1].rstrip() + "\n"
text = open("BENCHMARKS.md").read()
pattern = re.compile(r"## Admin pages\n.*?(?=\n## |\Z)", re.S)
text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section
open("BENCHMARKS.md", "w").write(text)
PY
echo "BENCHMARKS.md: Admin pages written" >&2
