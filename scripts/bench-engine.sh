#!/usr/bin/env bash
# Times the evaluation engine (benches/engine.rs, criterion) and the JavaScript reference
# (@reflag/flag-evaluation, benches/reference/bench.mjs) on the same workload, then prints a
# markdown table of the two and the targets. `make bench` runs this.
#
# The Rust bench writes target/bench-workload.json, which the reference then reads, so the two
# always time the same 100 flags and the same context.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d tests/differential/node_modules/@reflag/flag-evaluation ]; then
    (cd tests/differential && npm ci --no-audit --no-fund)
fi

rust_log=$(mktemp)
reference_log=$(mktemp)
trap 'rm -f "$rust_log" "$reference_log"' EXIT

RUSTFLAGS="--cfg erase_components" cargo bench --features ssr --bench engine 2>&1 | tee "$rust_log"
node benches/reference/bench.mjs | tee "$reference_log"

# criterion prints `NAME time: [low UNIT estimate UNIT high UNIT]`, the name on the line before
# when it is long; keep the estimate, in nanoseconds.
rust_ns() {
    awk -v want="$1" '
        /^Benchmarking / { next }
        /time:/ {
            name = $0; sub(/time:.*/, "", name); gsub(/^[ \t]+|[ \t]+$/, "", name)
            if (name == "") name = previous
            rest = $0; sub(/.*\[/, "", rest); split(rest, f, /[ \t]+/)
            value = f[3]; unit = f[4]
            scale = (unit == "ns") ? 1 : (unit == "ms") ? 1e6 : (unit == "s") ? 1e9 : 1e3
            if (name == want) { printf "%.1f\n", value * scale; exit }
            next
        }
        NF > 0 && !/^[ \t]/ { previous = $0; gsub(/[ \t]+$/, "", previous) }
    ' "$rust_log"
}

# bench.mjs prints `NAME (reference): N ns/op (median of M batches)`.
reference_ns() {
    awk -v want="$1 (reference):" 'index($0, want) == 1 { sub(/.*\): */, ""); print $1; exit }' "$reference_log"
}

bulk=$(rust_ns "bulk_100_flags (flatten + evaluate)")
bulk_eval=$(rust_ns "bulk_100_flags (evaluate only)")
single=$(rust_ns "single_simple_flag (flatten + evaluate)")
compile=$(rust_ns "compile_100_flags")
reference_bulk=$(reference_ns "bulk_100_flags")
reference_single=$(reference_ns "single_simple_flag")
for value in bulk bulk_eval single compile reference_bulk reference_single; do
    if [ -z "${!value}" ]; then
        echo "error: could not read the $value time from the benchmark output" >&2
        exit 1
    fi
done

awk -v bulk="$bulk" -v bulk_eval="$bulk_eval" -v single="$single" -v compile="$compile" \
    -v rbulk="$reference_bulk" -v rsingle="$reference_single" '
    function us(ns) { return (ns >= 1e6) ? sprintf("%.2f ms", ns / 1e6) : sprintf("%.2f µs", ns / 1000) }
    function ns(v) { return sprintf("%.0f ns", v) }
    function ratio(slow, fast) { return sprintf("%.1f×", slow / fast) }
    BEGIN {
        print ""
        print "| Benchmark | Gatehouse (Rust) | Reference (JS) | Gatehouse speed-up |"
        print "|---|---:|---:|---:|"
        print "| 100 flags, one context (flatten + evaluate) | " us(bulk) " | " us(rbulk) " | " ratio(rbulk, bulk) " |"
        print "| per flag (the line above ÷ 100) | " ns(bulk / 100) " | " ns(rbulk / 100) " | " ratio(rbulk, bulk) " |"
        print "| 100 flags, context already flattened | " us(bulk_eval) " | – | – |"
        print "| one simple flag (flatten + evaluate) | " ns(single) " | " ns(rsingle) " | " ratio(rsingle, single) " |"
        print "| compile 100 flags (per snapshot) | " us(compile) " | – | – |"
        print ""
        print "Targets: 100-flag bulk < 25 µs: " ((bulk < 25000) ? "met" : "NOT met") " (" us(bulk) "); " \
              "≥ 10× the reference: " ((rbulk / bulk >= 10) ? "met" : "NOT met") " (" ratio(rbulk, bulk) ")"
    }'
