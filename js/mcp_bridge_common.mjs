// Shared by the MCP bridge's panel scripts: the state both show, DOM helpers (text only) and the
// backend calls. An .mjs module: ComfyUI imports every .js of the extension as an extension itself,
// this one only through mcp_bridge_panel.js.

import { api } from "../../scripts/api.js";

export const state = {
  snapshot: null, // the last GET /mcp-bridge/status
  jobs: new Map(), // job_id -> job (from the snapshot, then from pushes)
  sessions: [],
  folders: { comfyui_output: "", extra: [], editable: true, env_var: "" },
  profile: null, // tool_profile: { value, choices, editable, env_var }
  token: null, // the token once revealed or copied
  tokenShown: false,
  ownRotation: null, // the last token change this tab made (its push is not news here)
  offsetMs: 0, // server clock minus browser clock
  loadError: null,
  connected: true,
  active: 0,
  published: [], // GET /mcp-bridge/workflows: the workflows published as tools
  publishedError: null,
};

export const ui = { openSetups: new Set(["claude-code"]) };

// -- small DOM helpers (text only) ----------------------------------------------------------------

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "className") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

export function serverNow() {
  return (Date.now() + state.offsetMs) / 1000;
}

export function duration(seconds) {
  if (!(seconds >= 0)) return "";
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function ago(epoch) {
  if (!epoch) return "";
  const s = Math.max(0, serverNow() - epoch);
  return s < 5 ? "just now" : `${duration(s)} ago`;
}

// -- backend --------------------------------------------------------------------------------------

export async function post(route, body) {
  return answer(
    await api.fetchApi(route, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body ?? {}),
    }),
  );
}

// A route's JSON answer; a refusal becomes an Error carrying the route's own message.
export async function answer(response) {
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = null;
  }
  if (!response.ok) throw new Error(data?.error || `HTTP ${response.status}`);
  return data;
}
