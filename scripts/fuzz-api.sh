#!/usr/bin/env bash
# Fuzzes every public route that /openapi.json describes with schemathesis (PyPI, installed once
# into tools/venv) against the debug server on a throw-away SQLite database, authenticated with
# the production environment's secret key. Fails on any 5xx answer (check `not_a_server_error`).
# Then the management API (/api/v1/openapi.json) with an admin service token: fails on any 5xx
# and on any answer the document does not describe (status code, content type, body schema).
# Revoking tokens runs last and on its own: the stateful phase would follow the token list to the
# fuzzer's own token and revoke it, and every later call would be a 401.
# The ingest rate limits are off so the fuzzer's bodies reach the decoders and the store; the
# live-update streams are left out (they answer with a stream that never ends).
#
#   scripts/fuzz-api.sh            # FUZZ_MAX_EXAMPLES (default 60) cases per operation
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
venv=tools/venv
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q " $SCHEMATHESIS_VERSION"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

binary=target/debug/gatehouse
[ -x "$binary" ] || { echo "build the server first (cargo leptos build)" >&2; exit 1; }
data_dir="$(mktemp -d)"
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$data_dir"
}
trap cleanup EXIT

export DATABASE_URL="sqlite://$data_dir/gatehouse.db"
export RUST_LOG=error
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
addr="127.0.0.1:$port"
"$binary" migrate >/dev/null
secret=$("$binary" keys create --environment production | tail -n 1)
[ -n "$secret" ] || { echo "no production secret key" >&2; exit 1; }
token=$("$binary" tokens create --name fuzz --role admin | tail -n 1)
[ -n "$token" ] || { echo "no service token" >&2; exit 1; }
"$binary" serve --addr "$addr" --ingest-rate-per-key 0 --ingest-rate-per-address 0 \
    >"$data_dir/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
    curl -fsS "http://$addr/readyz" >/dev/null 2>&1 && break
    sleep 0.2
done

# A network-level failure (a reset connection) is retried once before it counts as an error;
# on any failure the server's log is printed, since a 5xx or a crash is explained there.
# The "coverage" phase is left out: on the recursive context schema of OFREP's bulk route its
# generator sometimes dies inside Python ("SystemError: AST constructor recursion depth
# mismatch", seen in 2 of 4 runs) before sending anything; the examples, fuzzing and
# stateful phases still send every operation generated bodies.
status=0
"$venv/bin/schemathesis" --no-color run "http://$addr/openapi.json" \
    --header "Authorization: Bearer $secret" \
    --checks not_a_server_error \
    --phases examples,fuzzing,stateful \
    --exclude-path-regex '^/(sse/|ofrep/v1/events)' \
    --max-examples "${FUZZ_MAX_EXAMPLES:-60}" \
    --request-timeout 10 \
    --request-retries 1 \
    --workers 2 \
    --suppress-health-check all || status=$?
"$venv/bin/schemathesis" --no-color run "http://$addr/api/v1/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --exclude-operation-id revokeToken \
    --phases examples,fuzzing,stateful \
    --max-examples "${FUZZ_MAX_EXAMPLES:-60}" \
    --request-timeout 10 \
    --request-retries 1 \
    --workers 2 \
    --suppress-health-check all || status=$?
# Revoking, alone and without the stateful phase: generated prefixes are not the fuzzer's token's.
"$venv/bin/schemathesis" --no-color run "http://$addr/api/v1/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --include-operation-id revokeToken \
    --phases examples,fuzzing \
    --max-examples "${FUZZ_MAX_EXAMPLES:-60}" \
    --request-timeout 10 \
    --request-retries 1 \
    --suppress-health-check all || status=$?
if [ "$status" -ne 0 ]; then
    echo "--- server log (last 50 lines) ---"
    tail -n 50 "$data_dir/server.log"
fi
exit "$status"
