// Drives @reflag/node-sdk (unmodified) against a running Gatehouse. First the SDK reports every
// company's and user's attributes (POST /bulk), as an application does; then, for every context,
// flags evaluated locally from GET /features must equal the server's remote evaluation
// (GET /features/evaluated), which only gets the ids and must use the stored attributes.
// Prints one JSON summary line; exit code 1 on any mismatch.
//   GATEHOUSE_URL=http://127.0.0.1:port SECRET_KEY=sec_... node reflag-node.mjs contexts.json
import { readFileSync } from "node:fs";
import { ReflagClient } from "@reflag/node-sdk";

const contexts = JSON.parse(readFileSync(process.argv[2], "utf8"));
const client = new ReflagClient({
  secretKey: process.env.SECRET_KEY,
  apiBaseUrl: process.env.GATEHOUSE_URL,
  logLevel: "ERROR",
  flagsFetchRetries: 0,
  batchOptions: { flushOnExit: false },
});
await client.initialize();

const view = (flags) =>
  Object.fromEntries(
    Object.entries(flags)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([key, flag]) => [key, { isEnabled: flag.isEnabled, config: flag.config?.key ?? null, payload: flag.config?.payload ?? null }]),
  );

for (const { company, user } of contexts) {
  const { id: companyId, ...companyAttributes } = company;
  const { id: userId, ...userAttributes } = user;
  await client.updateUser(userId, { attributes: userAttributes });
  await client.updateCompany(companyId, { attributes: companyAttributes, userId });
}
await client.flush();

const mismatches = [];

let enabled = 0;
let flagCount = 0;
for (const context of contexts) {
  const local = view(client.getFlags({ ...context, enableTracking: false }));
  const remote = view(await client.getFlagsRemote(context.user?.id, context.company?.id, { other: context.other ?? {} }));
  flagCount = Object.keys(local).length;
  enabled += Object.values(local).filter((f) => f.isEnabled).length;
  if (JSON.stringify(local) !== JSON.stringify(remote)) mismatches.push({ context, local, remote });
}
console.log(JSON.stringify({ contexts: contexts.length, flags: flagCount, enabled, mismatches: mismatches.slice(0, 5), mismatchCount: mismatches.length }));
await client.flush?.().catch(() => {});
process.exit(mismatches.length === 0 ? 0 : 1);
