// Reference oracle for tests/differential.rs: reads JSON lines {flagKey, rules, context, now}
// (now = epoch ms) and prints one line per input with the result of @reflag/flag-evaluation's
// evaluateFlagRules, keys in a fixed order and `value: null` for JS undefined. A line
// {dates: [...]} instead prints {times: [...]}: `new Date(s).getTime()` per string (null = NaN).
// Run with TZ=UTC: the reference evaluates AFTER/BEFORE and time-zone-less dates in local time.
import { createInterface } from "node:readline";
import pkg from "@reflag/flag-evaluation";

const { evaluateFlagRules } = pkg;

// The reference reads the clock through `new Date()`; pin it per input line.
const RealDate = Date;
let fixedNow = 0;
class FixedDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(fixedNow);
    else super(...args);
  }
  static now() {
    return fixedNow;
  }
}
globalThis.Date = FixedDate;
// GT/LT/DATE_* log every non-numeric comparison; keep stdout/stderr quiet.
console.error = () => {};

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
const out = [];
for await (const line of rl) {
  if (!line.trim()) continue;
  const input = JSON.parse(line);
  let result;
  if (Array.isArray(input.dates)) {
    // Date-parser probe: epoch ms of `new Date(s)` per string, null for Invalid Date.
    out.push(JSON.stringify({ times: input.dates.map((d) => { const t = new Date(d).getTime(); return Number.isNaN(t) ? null : t; }) }));
    continue;
  }
  fixedNow = input.now;
  try {
    const r = evaluateFlagRules({ flagKey: input.flagKey, rules: input.rules, context: input.context });
    result = {
      flagKey: r.flagKey,
      value: r.value === undefined ? null : r.value,
      reason: r.reason,
      context: r.context,
      ruleEvaluationResults: r.ruleEvaluationResults,
      missingContextFields: r.missingContextFields,
    };
  } catch (e) {
    result = { error: String(e) };
  }
  out.push(JSON.stringify(result));
}
process.stdout.write(out.join("\n") + "\n");
