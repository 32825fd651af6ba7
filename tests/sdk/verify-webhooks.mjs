// Verifies webhook deliveries with the Standard Webhooks reference library, unmodified: reads
// [{secret, headers, body}] as JSON on stdin, prints "verified N" or fails with the reason.
import { Webhook } from "standardwebhooks";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const deliveries = JSON.parse(input);
for (const { secret, headers, body } of deliveries) {
  // The library takes the secret without its whsec_ prefix or with it; give it as stored.
  const payload = new Webhook(secret).verify(body, headers);
  if (typeof payload !== "object") throw new Error(`not a JSON payload: ${body}`);
}
console.log(`verified ${deliveries.length}`);
