// Drives the bridge with the official TypeScript SDK: connect, list tools, call get_server_info.
// Usage: node ts_client.mjs <url> <streamable|sse> [bearer token]
// Prints one JSON line {protocolVersion, serverName, tools, result}; exits non-zero on any failure.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";

const [url, kind, token] = process.argv.slice(2);
const headers = token ? { Authorization: `Bearer ${token}` } : {};
const transport =
  kind === "sse"
    ? new SSEClientTransport(new URL(url), {
        requestInit: { headers },
        eventSourceInit: { fetch: (u, init) => fetch(u, { ...init, headers: { ...init?.headers, ...headers } }) },
      })
    : new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
const client = new Client({ name: "bridge-ts-test", version: "1.0.0" });
try {
  await client.connect(transport);
  const tools = (await client.listTools()).tools.map((t) => t.name);
  const result = await client.callTool({ name: "get_server_info", arguments: {} });
  console.log(
    JSON.stringify({
      protocolVersion: transport.protocolVersion ?? null,
      serverName: client.getServerVersion()?.name,
      tools,
      result: result.structuredContent,
      isError: result.isError ?? false,
    }),
  );
  if (kind !== "sse") await transport.terminateSession(); // DELETE: end the 2025 session now
  await client.close();
  process.exit(0);
} catch (err) {
  console.error(String(err?.stack ?? err));
  process.exit(1);
}
