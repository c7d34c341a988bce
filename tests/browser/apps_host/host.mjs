// The test host: connects to the bridge over Streamable HTTP, and for each host.open(tool, args) renders
// the tool's ui:// view in a sandboxed frame through ext-apps' AppBridge, then makes the call itself.
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { AppBridge, PostMessageTransport, getToolUiResourceUri } from "@modelcontextprotocol/ext-apps/app-bridge";

const token = new URLSearchParams(location.search).get("token") || "";
const chat = document.getElementById("chat");
const client = new Client(
  { name: "ext-apps-test-host", version: "1.0.0" },
  { capabilities: { extensions: { "io.modelcontextprotocol/ui": { mimeTypes: ["text/html;profile=mcp-app"] } } } },
);
const headers = token ? { Authorization: "Bearer " + token } : {};
const results = [];

async function start() {
  await client.connect(new StreamableHTTPClientTransport(new URL("/mcp", location.origin), { requestInit: { headers } }));
  return (await client.listTools()).tools;
}
const ready = start();

async function open(name, args, say) {
  const tools = await ready;
  const tool = tools.find((t) => t.name === name);
  const uri = getToolUiResourceUri(tool);
  if (!uri) throw new Error(name + " has no view");
  const html = (await client.readResource({ uri })).contents[0].text;
  const bubble = document.createElement("div");
  bubble.className = "bubble user";
  bubble.textContent = say || "";
  if (say) chat.append(bubble);
  const frame = document.createElement("iframe");
  frame.className = "view";
  frame.setAttribute("sandbox", "allow-scripts");
  frame.dataset.tool = name;
  chat.append(frame);
  const bridge = new AppBridge(client, { name: "ext-apps-test-host", version: "1.0.0" },
    { serverTools: {}, serverResources: {} }, { hostContext: { toolInfo: { tool }, theme: "light", platform: "web" } });
  bridge.onsizechange = ({ height }) => { if (height) frame.style.height = height + "px"; };
  const index = results.length;
  results.push(null);
  bridge.oninitialized = () => {
    bridge.sendToolInput({ arguments: args });
    client.callTool({ name, arguments: args }, { timeout: 600000 }).then(
      (result) => { results[index] = result; return bridge.sendToolResult(result); },
      (err) => { results[index] = { isError: true, content: [{ type: "text", text: String(err) }] }; },
    );
  };
  await bridge.connect(new PostMessageTransport(frame.contentWindow, frame.contentWindow));
  frame.srcdoc = html;  // after connecting: the view's ui/initialize finds the bridge listening
  return index;
}

window.host = { ready: ready.then(() => true), open, results, client };
