// Drives @openfeature/server-sdk with @openfeature/ofrep-provider (unmodified) against a running
// Gatehouse and prints what the provider resolved, as one JSON line.
//   GATEHOUSE_URL=... API_KEY=... node openfeature.mjs
import { OpenFeature } from "@openfeature/server-sdk";
import { OFREPProvider } from "@openfeature/ofrep-provider";

await OpenFeature.setProviderAndWait(
  new OFREPProvider({ baseUrl: process.env.GATEHOUSE_URL, headers: [["X-API-Key", process.env.API_KEY]] }),
);
const client = OpenFeature.getClient();
const acme = { targetingKey: "user-1", company: { id: "acme", plan: "enterprise" } };
const globex = { targetingKey: "user-2", company: { id: "globex", plan: "free" } };
const out = {
  acmeBoolean: await client.getBooleanDetails("acme-only", false, acme),
  globexBoolean: await client.getBooleanDetails("acme-only", false, globex),
  acmeObject: await client.getObjectDetails("theme", { color: "default" }, acme),
  globexObject: await client.getObjectDetails("theme", { color: "default" }, globex),
  missing: await client.getBooleanDetails("no-such-flag", true, acme),
};
console.log(JSON.stringify(out));
await OpenFeature.close();
