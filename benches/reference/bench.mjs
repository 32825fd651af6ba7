// Times the reference implementation (@reflag/flag-evaluation 1.0.1, as the node SDK uses it) on
// the workload written by `cargo bench --bench engine` (target/bench-workload.json), so the two
// can be recorded side by side:
//   node benches/reference/bench.mjs [path/to/bench-workload.json]
// Resolves the package from tests/differential/node_modules (npm ci there first).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, "../../tests/differential/package.json"));
const { newEvaluator } = require("@reflag/flag-evaluation");

const path = process.argv[2] ?? join(here, "../../target/bench-workload.json");
const workload = JSON.parse(readFileSync(path, "utf8"));
console.error = () => {};

// Like node-sdk 1.7.1: one evaluator per flag for access and one for config, compiled once.
function compile(def) {
  return {
    key: def.key,
    enabled: newEvaluator(def.targeting.rules.map((r) => ({ filter: r.filter, value: true }))),
    config: def.config
      ? newEvaluator(def.config.variants.map((v) => ({ filter: v.filter, value: { key: v.key, payload: v.payload } })))
      : undefined,
  };
}

function evaluateAll(flags, context) {
  const out = {};
  for (const f of flags) {
    const enabled = f.enabled(context, f.key);
    const config = f.config ? f.config(context, f.key) : undefined;
    out[f.key] = { isEnabled: enabled.value ?? false, config: config?.value, missing: enabled.missingContextFields };
  }
  return out;
}

function time(name, fn) {
  // Warm up, then take the median of several timed batches.
  for (let i = 0; i < 2000; i++) fn();
  const samples = [];
  for (let s = 0; s < 15; s++) {
    const n = 2000;
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    samples.push(Number(process.hrtime.bigint() - start) / n);
  }
  samples.sort((a, b) => a - b);
  console.log(`${name}: ${samples[Math.floor(samples.length / 2)].toFixed(0)} ns/op (median of ${samples.length} batches)`);
}

const RealDate = Date;
globalThis.Date = class extends RealDate {
  constructor(...a) {
    if (a.length === 0) super(workload.now);
    else super(...a);
  }
};

const flags = workload.flags.map(compile);
const simple = [compile(workload.simple)];
const enabled = Object.values(evaluateAll(flags, workload.context)).filter((r) => r.isEnabled).length;
console.log(`reference workload: ${flags.length} flags, ${enabled} enabled for the benchmark context`);
time("bulk_100_flags (reference)", () => evaluateAll(flags, workload.context));
time("single_simple_flag (reference)", () => evaluateAll(simple, workload.context));
