// The official MCP TypeScript client, unmodified, against Gatehouse's /mcp (tests/mcp.rs).
// Usage: node mcp-client.mjs URL TOKEN CALLS_JSON — connects over Streamable HTTP with the token,
// lists the tools, makes each call ({name, arguments}) in order, and prints one JSON document:
// {tools: [{name, inputSchema}], results: [{isError, text}]}. A failure to connect exits 1.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [url, token, callsJson] = process.argv.slice(2);
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
const client = new Client({ name: 'gatehouse-test', version: '1.0.0' });
try {
  await client.connect(transport);
} catch (error) {
  console.log(JSON.stringify({ connectError: String(error) }));
  process.exit(1);
}
const listed = await client.listTools();
const results = [];
for (const call of JSON.parse(callsJson || '[]')) {
  const answer = await client.callTool({ name: call.name, arguments: call.arguments });
  results.push({
    isError: Boolean(answer.isError),
    text: answer.content.map((c) => c.text ?? '').join(''),
  });
}
await client.close();
console.log(JSON.stringify({ tools: listed.tools.map((t) => ({ name: t.name, inputSchema: t.inputSchema })), results }));
