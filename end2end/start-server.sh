#!/usr/bin/env bash
# Serves the debug build on a throw-away SQLite database for the Playwright run.
set -euo pipefail
cd "$(dirname "$0")/.."
addr="$1"
data_dir="$(mktemp -d)"
trap 'rm -rf "$data_dir"' EXIT
export LEPTOS_SITE_ROOT=target/site
export DATABASE_URL="sqlite://$data_dir/gatehouse.db"
export GATEHOUSE_ADDR="$addr"
exec ./target/debug/gatehouse serve
