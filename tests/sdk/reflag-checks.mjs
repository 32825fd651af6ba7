// Drives @reflag/node-sdk (unmodified) against a running Gatehouse as an application does: it
// evaluates a flag locally for each company and reads `isEnabled`, which makes the SDK report a
// check (a `feature-flag-event` through POST /bulk). Prints how many companies had it enabled.
//   GATEHOUSE_URL=http://127.0.0.1:port SECRET_KEY=sec_... node reflag-checks.mjs FLAG
import { ReflagClient } from "@reflag/node-sdk";

const flag = process.argv[2];
const client = new ReflagClient({
  secretKey: process.env.SECRET_KEY,
  apiBaseUrl: process.env.GATEHOUSE_URL,
  logLevel: "ERROR",
  flagsFetchRetries: 0,
  batchOptions: { flushOnExit: false },
});
await client.initialize();
const companies = [
  { id: "acme", plan: "pro" },
  { id: "beta", plan: "free" },
  { id: "gamma", plan: "pro" },
];
let enabled = 0;
for (const company of companies) {
  const bound = client.bindClient({ company, user: { id: `user-${company.id}` }, enableTracking: true });
  if (bound.getFlag(flag).isEnabled) enabled += 1;
}
await client.flush();
console.log(JSON.stringify({ checked: companies.length, enabled }));
