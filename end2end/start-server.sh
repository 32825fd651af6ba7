#!/usr/bin/env bash
# Serves the debug build on a throw-away SQLite database for the Playwright run. The log also
# goes to end2end/test-results/server.log, where the tests read the first-run setup link.
set -euo pipefail
cd "$(dirname "$0")/.."
addr="$1"
data_dir="$(mktemp -d)"
log="end2end/test-results/server.log"
mkdir -p "$(dirname "$log")"
: > "$log"
trap 'rm -rf "$data_dir"' EXIT
export LEPTOS_SITE_ROOT=target/site
export DATABASE_URL="sqlite://$data_dir/gatehouse.db"
export GATEHOUSE_ADDR="$addr"
export NO_COLOR=1
./target/debug/gatehouse serve 2>&1 | tee "$log"
