// The MCP bridge's status panel: a sidebar tab in ComfyUI's web page (a floating panel on frontends
// without the sidebar API). Everything shown comes from GET /mcp-bridge/status and from the
// "mcp_bridge.*" events the backend pushes over ComfyUI's websocket.
//
// Security: prompts, file names and client names come from an AI or from remote clients, so every
// value is rendered with textContent / attributes, never as HTML. Requests use api.fetchApi with
// relative routes, so the panel works under a sub-path, behind a proxy and through /api.

import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { ago, answer, clear, duration, el, post, serverNow, state, ui } from "./mcp_bridge_common.mjs";
import { buildPublish, loadPublished, loadPublishedSoon, renderPublished } from "./mcp_bridge_publish.mjs";

const EXTENSION = "comfyui_mcp_bridge.status";
const TAB_ID = "comfyui-mcp-bridge";
const SERVER_KEY = "comfyui";
const RECENT = 12;

// -- small DOM helpers (text only) ----------------------------------------------------------------

function fullURL(path) {
  // As ComfyUI is reached right now (origin and sub-path), without the /api prefix.
  const base = typeof api.api_base === "string" ? api.api_base : "";
  return `${window.location.origin}${base}${path}`;
}

function viewURL(image) {
  const query = new URLSearchParams({
    filename: image.filename,
    subfolder: image.subfolder || "",
    type: image.type || "output",
  });
  return api.apiURL(`/view?${query}`);
}

async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch (_) {
    // fall through to the selection-based copy
  }
  const area = el("textarea", { readonly: true, style: "position:fixed;left:-9999px;top:0;opacity:0" });
  area.value = text;
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch (_) {
    ok = false;
  }
  area.remove();
  return ok;
}

function copyButton(label, getText) {
  const button = el("button", { className: "mcpb-btn mcpb-copy", type: "button", text: label });
  button.addEventListener("click", async () => {
    let ok = false;
    try {
      ok = await copyText(await getText());
    } catch (error) {
      button.title = String(error?.message || error);
    }
    button.textContent = ok ? "Copied" : "Copy failed";
    setTimeout(() => (button.textContent = label), 1500);
  });
  return button;
}

// -- backend --------------------------------------------------------------------------------------

async function refresh() {
  try {
    const response = await api.fetchApi("/mcp-bridge/status", { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    applySnapshot(await response.json());
    state.loadError = null;
  } catch (error) {
    state.loadError = String(error?.message || error);
  }
  renderAll();
}

function applySnapshot(snap) {
  state.snapshot = snap;
  state.offsetMs = snap.server_time * 1000 - Date.now();
  state.jobs.clear();
  for (const job of [...snap.jobs.recent, ...snap.jobs.active]) state.jobs.set(job.job_id, job);
  state.sessions = snap.sessions || [];
  state.folders = snap.output_folders;
  state.profile = snap.tool_profile;
  state.active = snap.jobs.active.length;
}

function finished(job) {
  return !["queued", "running"].includes(job.state);
}

function pruneJobs() {
  const done = [...state.jobs.values()].filter(finished).sort((a, b) => (b.finished || 0) - (a.finished || 0));
  for (const job of done.slice(RECENT)) state.jobs.delete(job.job_id);
}

function listen() {
  api.addEventListener("mcp_bridge.job", (event) => {
    const { job, removed, active, server_time } = event.detail || {};
    if (server_time) state.offsetMs = server_time * 1000 - Date.now();
    if (removed) state.jobs.delete(removed); // never queued: ComfyUI refused the prompt
    else if (job) state.jobs.set(job.job_id, job);
    else return;
    state.active = active;
    if (job && finished(job) && state.published.some((t) => t.name === job.tool)) loadPublishedSoon(); // its last runs
    pruneJobs();
    renderJobs();
    renderBadge();
  });
  api.addEventListener("mcp_bridge.sessions", (event) => {
    state.sessions = event.detail?.sessions || [];
    renderSessions();
  });
  api.addEventListener("mcp_bridge.settings", (event) => {
    if (event.detail?.tool_profile) {
      state.profile = { ...state.profile, value: event.detail.tool_profile };
      renderProfile();
      return;
    }
    state.folders = { ...state.folders, extra: event.detail?.output_folders || [] };
    renderFolders();
  });
  api.addEventListener("mcp_bridge.token", (event) => {
    if (event.detail?.rotation && event.detail.rotation === state.ownRotation) return;
    state.token = null;
    state.tokenShown = false;
    renderToken();
    renderSetups();
  });
  api.addEventListener("mcp_bridge.workflows", () => loadPublished());
  api.addEventListener("reconnecting", () => {
    state.connected = false;
    renderStatus();
  });
  api.addEventListener("reconnected", () => {
    state.connected = true;
    refresh();
    loadPublished();
  });
}

// -- the panel ------------------------------------------------------------------------------------

function section(title, className) {
  const body = el("div", { className: "mcpb-body" });
  const node = el("section", { className: `mcpb-section ${className}` }, el("h3", { text: title }), body);
  return { node, body };
}

function buildRoot() {
  const root = el("div", { className: "mcpb-root", "data-mcp-bridge-panel": true });
  ui.status = section("MCP bridge", "mcpb-status");
  ui.setups = section("Connect a client", "mcpb-setups");
  ui.token = section("Token", "mcpb-token");
  ui.sessions = section("Connected clients", "mcpb-sessions");
  ui.jobs = section("Tool calls", "mcpb-jobs");
  ui.folders = section("Allowed output folders", "mcpb-folders");
  ui.profile = section("Tool list", "mcpb-profile");
  ui.publish = section("Publish this workflow", "mcpb-publish");
  ui.published = section("Published workflows", "mcpb-published-tools");
  ui.jobRows = new Map();
  ui.activeList = el("div", { className: "mcpb-job-list mcpb-active" });
  ui.recentList = el("div", { className: "mcpb-job-list mcpb-recent" });
  ui.jobs.body.append(ui.activeList, el("h4", { text: "Recent results" }), ui.recentList);
  buildFolderForm();
  buildProfileForm();
  buildPublish();
  root.append(
    ui.status.node,
    ui.setups.node,
    ui.token.node,
    ui.sessions.node,
    ui.jobs.node,
    ui.publish.node,
    ui.published.node,
    ui.folders.node,
    ui.profile.node,
  );
  return root;
}

function renderAll() {
  if (!ui.root) return;
  renderStatus();
  renderSetups();
  renderToken();
  renderSessions();
  renderJobs();
  renderFolders();
  renderProfile();
  renderPublished();
  renderBadge();
}

function renderStatus() {
  const body = clear(ui.status.body);
  const snap = state.snapshot;
  if (!snap) {
    body.append(el("p", { className: "mcpb-error", text: state.loadError ? `Cannot reach the bridge: ${state.loadError}` : "Loading…" }));
    return;
  }
  const mcp = snap.mcp || {};
  const up = state.connected && !state.loadError && mcp.available;
  body.append(
    el(
      "p",
      { className: "mcpb-state" },
      el("span", { className: `mcpb-dot ${up ? "mcpb-up" : "mcpb-down"}` }),
      el("span", { className: "mcpb-state-text", text: up ? "Up" : state.connected ? "Unavailable" : "ComfyUI connection lost" }),
      el("span", { className: "mcpb-muted", text: ` · ComfyUI ${snap.comfyui_version || "?"} · bridge ${snap.bridge_version}` }),
    ),
  );
  if (mcp.problem) body.append(el("p", { className: "mcpb-error", text: mcp.problem }));
  if (state.loadError) body.append(el("p", { className: "mcpb-error", text: state.loadError }));
  for (const endpoint of mcp.endpoints || []) {
    const url = fullURL(endpoint.path);
    body.append(
      el(
        "div",
        { className: "mcpb-endpoint", "data-endpoint": endpoint.id },
        el("div", { className: "mcpb-label", text: endpoint.label }),
        el("div", { className: "mcpb-row" }, el("code", { className: "mcpb-url", text: url }), copyButton("Copy", () => url)),
      ),
    );
  }
  if (mcp.exposure) body.append(el("p", { className: "mcpb-muted mcpb-small", text: mcp.exposure }));
  renderPeers(body, snap.instance);
}

// Several instances behind one URL: this one's id and whether each peer answers (as of the last load).
function renderPeers(body, instance) {
  if (!instance || !(instance.peers || []).length) return;
  const list = el("ul", { className: "mcpb-peers" });
  for (const peer of instance.peers) {
    const what = peer.answers ? `answers · ${peer.queue_length ?? "?"} queued` : `not answering${peer.error ? `: ${peer.error}` : ""}`;
    list.append(
      el(
        "li",
        { "data-peer": peer.id },
        el("span", { className: `mcpb-dot ${peer.answers ? "mcpb-up" : "mcpb-down"}` }),
        el("code", { text: peer.id }),
        el("span", { className: "mcpb-muted", text: ` ${peer.url} · ${what}` }),
      ),
    );
  }
  body.append(el("p", { className: "mcpb-label", text: `Instance ${instance.id} · peers` }), list);
}

// -- client setups --

function endpointPath(id) {
  const found = (state.snapshot?.mcp?.endpoints || []).find((e) => e.id === id);
  return found ? found.path : "/mcp";
}

function setups(token) {
  const url = fullURL(endpointPath("streamable-http"));
  const needToken = Boolean(state.snapshot?.token?.required);
  const auth = needToken ? `Bearer ${token}` : null;
  const headers = auth ? { Authorization: auth } : undefined;
  const claudeCode = `claude mcp add --transport http ${SERVER_KEY} ${url}` + (auth ? ` --header "Authorization: ${auth}"` : "");
  const remoteArgs = ["mcp-remote", url];
  const host = new URL(url).hostname;
  if (url.startsWith("http:") && !["localhost", "127.0.0.1", "[::1]"].includes(host)) remoteArgs.push("--allow-http");
  const desktopServer = { command: "npx", args: remoteArgs };
  if (auth) {
    desktopServer.args = [...remoteArgs, "--header", "Authorization:${AUTH_HEADER}"];
    desktopServer.env = { AUTH_HEADER: auth };
  }
  const json = (value) => JSON.stringify(value, null, 2);
  return [
    { id: "claude-code", title: "Claude Code", where: "Run in a terminal:", text: claudeCode },
    {
      id: "claude-desktop",
      title: "Claude Desktop",
      where: "In claude_desktop_config.json (through mcp-remote, needs Node.js):",
      text: json({ mcpServers: { [SERVER_KEY]: desktopServer } }),
    },
    {
      id: "cursor",
      title: "Cursor",
      where: "In ~/.cursor/mcp.json:",
      text: json({ mcpServers: { [SERVER_KEY]: headers ? { url, headers } : { url } } }),
    },
    {
      id: "vscode",
      title: "VS Code",
      where: "In .vscode/mcp.json:",
      text: json({ servers: { [SERVER_KEY]: headers ? { type: "http", url, headers } : { type: "http", url } } }),
    },
  ];
}

const MASK = "••••••••••••";

async function fetchToken() {
  if (!state.token) state.token = (await post("/mcp-bridge/token/reveal", {})).token;
  return state.token;
}

async function tokenForCopy() {
  // The token a copied client setup needs: none when not required, a placeholder when not shown here.
  if (!state.snapshot?.token?.required) return "";
  if (!state.snapshot.token.available) return "<TOKEN>";
  return fetchToken();
}

function renderSetups() {
  const body = clear(ui.setups.body);
  if (!state.snapshot) return;
  const shown = state.tokenShown && state.token ? state.token : state.snapshot.token?.available ? MASK : "<TOKEN>";
  for (const setup of setups(shown)) {
    const details = el(
      "details",
      { className: "mcpb-setup", "data-client": setup.id, open: ui.openSetups.has(setup.id) },
      el("summary", { text: setup.title }),
      el("div", { className: "mcpb-muted mcpb-small", text: setup.where }),
      el("pre", { className: "mcpb-snippet", text: setup.text }),
      copyButton("Copy", async () => {
        const token = await tokenForCopy();
        return setups(token).find((s) => s.id === setup.id).text;
      }),
    );
    details.addEventListener("toggle", () => {
      if (details.open) ui.openSetups.add(setup.id);
      else ui.openSetups.delete(setup.id);
    });
    body.append(details);
  }
  if (state.snapshot.token?.required && !state.snapshot.token.available) {
    body.append(el("p", { className: "mcpb-muted mcpb-small", text: `Replace <TOKEN> with the token (${state.snapshot.token.refusal}).` }));
  }
}

// -- token --

let confirmTimer = null;

function renderToken() {
  const body = clear(ui.token.body);
  const info = state.snapshot?.token;
  if (!info) return;
  body.append(
    el("p", {
      className: "mcpb-muted mcpb-small",
      text: info.required
        ? "Clients must send this token (Authorization: Bearer …)."
        : "Not required while ComfyUI listens on this machine only; clients may still send it.",
    }),
  );
  if (!info.available) {
    body.append(el("p", { className: "mcpb-muted", text: `Hidden: ${info.refusal}` }));
    return;
  }
  const value = el("code", { className: "mcpb-token-value", text: state.tokenShown && state.token ? state.token : MASK });
  const error = el("div", { className: "mcpb-error mcpb-small" });
  const reveal = el("button", { className: "mcpb-btn mcpb-reveal", type: "button", text: state.tokenShown ? "Hide" : "Reveal" });
  reveal.addEventListener("click", async () => {
    try {
      if (!state.tokenShown) await fetchToken();
      state.tokenShown = !state.tokenShown;
      renderToken();
      renderSetups();
    } catch (e) {
      error.textContent = String(e.message || e);
    }
  });
  const regenerate = el("button", { className: "mcpb-btn mcpb-danger mcpb-regenerate", type: "button", text: "Regenerate" });
  regenerate.addEventListener("click", async () => {
    if (regenerate.dataset.confirm !== "1") {
      regenerate.dataset.confirm = "1";
      regenerate.textContent = "Confirm: new token, disconnect clients";
      clearTimeout(confirmTimer);
      confirmTimer = setTimeout(() => renderToken(), 5000);
      return;
    }
    clearTimeout(confirmTimer);
    try {
      const data = await post("/mcp-bridge/token/regenerate", {});
      state.ownRotation = data.rotation;
      state.token = data.token;
      state.tokenShown = true;
      renderToken();
      renderSetups();
      const note = data.disconnected ? `New token; ${data.disconnected} client(s) disconnected.` : "New token.";
      ui.token.body.append(el("p", { className: "mcpb-muted mcpb-small", text: `${note} Update your client setups.` }));
    } catch (e) {
      error.textContent = String(e.message || e);
    }
  });
  body.append(
    el("div", { className: "mcpb-row" }, value),
    el("div", { className: "mcpb-row" }, reveal, copyButton("Copy", () => fetchToken()), regenerate),
    error,
  );
}

// -- sessions --

function renderSessions() {
  const body = clear(ui.sessions.body);
  if (!state.sessions.length) {
    body.append(el("p", { className: "mcpb-muted", text: "No MCP client connected." }));
    return;
  }
  for (const s of state.sessions) {
    const name = [s.client_name || "unknown client", s.client_version].filter(Boolean).join(" ");
    body.append(
      el(
        "div",
        { className: "mcpb-session" },
        el("div", { className: "mcpb-session-name", text: name }),
        el("div", {
          className: "mcpb-muted mcpb-small mcpb-session-meta",
          "data-since": s.connected_since,
          "data-last": s.last_activity,
          text: sessionMeta(s),
        }),
      ),
    );
  }
}

function sessionMeta(s) {
  return `${s.transport} · since ${ago(s.connected_since)} · last activity ${ago(s.last_activity)}`;
}

// -- jobs --

function jobRow(job) {
  let row = ui.jobRows.get(job.job_id);
  if (row) return row;
  const node = el("div", { className: "mcpb-job", "data-job-id": job.job_id });
  row = {
    node,
    tool: el("span", { className: "mcpb-job-tool" }),
    state: el("span", { className: "mcpb-job-state" }),
    elapsed: el("span", { className: "mcpb-job-elapsed mcpb-muted" }),
    summary: el("div", { className: "mcpb-job-summary" }),
    message: el("div", { className: "mcpb-job-message mcpb-muted mcpb-small" }),
    bar: el("div", { className: "mcpb-bar-fill" }),
    track: null,
    cancel: el("button", { className: "mcpb-btn mcpb-danger mcpb-cancel", type: "button", text: "Cancel" }),
    thumbs: el("div", { className: "mcpb-thumbs" }),
    thumbKey: "",
  };
  row.track = el("div", { className: "mcpb-bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100" }, row.bar);
  row.cancel.addEventListener("click", async () => {
    row.cancel.disabled = true;
    row.cancel.textContent = "Cancelling…";
    try {
      await post("/mcp-bridge/jobs/cancel", { job_id: job.job_id });
    } catch (e) {
      row.message.textContent = `Cancel failed: ${e.message || e}`;
      row.cancel.disabled = false;
      row.cancel.textContent = "Cancel";
    }
  });
  node.append(
    el("div", { className: "mcpb-row mcpb-job-head" }, row.tool, row.state, row.elapsed),
    row.summary,
    row.track,
    el("div", { className: "mcpb-row" }, row.message, row.cancel),
    row.thumbs,
  );
  ui.jobRows.set(job.job_id, row);
  return row;
}

function updateJobRow(row, job) {
  const done = finished(job);
  row.node.dataset.state = job.state;
  row.tool.textContent = job.tool;
  row.state.textContent = job.state;
  row.state.className = `mcpb-job-state mcpb-state-${job.state}`;
  row.summary.textContent = job.summary || "";
  const message = job.error?.message && done ? job.error.message : job.message || "";
  row.message.textContent = message === job.state ? "" : message;
  const percent = Math.round((done ? 1 : job.progress || 0) * 100);
  row.bar.style.width = `${percent}%`;
  row.track.setAttribute("aria-valuenow", String(percent));
  row.track.hidden = done;
  row.cancel.hidden = done;
  if (!done && !job.cancel_requested && row.cancel.textContent !== "Cancelling…") row.cancel.disabled = false;
  updateElapsed(row, job);
  const images = (job.outputs || []).filter((image) => (image.type || "output") === "output");
  const key = images.map((image) => `${image.subfolder}/${image.filename}`).join("|");
  if (key !== row.thumbKey) {
    row.thumbKey = key;
    clear(row.thumbs);
    for (const image of images) {
      const url = viewURL(image);
      row.thumbs.append(
        el(
          "a",
          { href: url, target: "_blank", rel: "noopener noreferrer", title: image.filename, className: "mcpb-thumb" },
          el("img", { src: url, alt: image.filename, loading: "lazy" }),
        ),
      );
    }
  }
}

function updateElapsed(row, job) {
  const end = finished(job) ? job.finished || job.created + (job.elapsed_s || 0) : serverNow();
  row.elapsed.textContent = duration(Math.max(0, end - job.created));
}

function renderJobs() {
  if (!ui.root) return;
  const jobs = [...state.jobs.values()];
  const active = jobs.filter((j) => !finished(j)).sort((a, b) => a.created - b.created);
  const recent = jobs.filter(finished).sort((a, b) => (b.finished || 0) - (a.finished || 0)).slice(0, RECENT);
  const keep = new Set([...active, ...recent].map((j) => j.job_id));
  for (const [id, row] of ui.jobRows) {
    if (!keep.has(id)) {
      row.node.remove();
      ui.jobRows.delete(id);
    }
  }
  placeRows(ui.activeList, active, "No tool call running.");
  placeRows(ui.recentList, recent, "Nothing yet.");
}

function placeRows(list, jobs, emptyText) {
  let empty = list.querySelector(":scope > .mcpb-empty");
  if (!jobs.length) {
    if (!empty) list.append(el("p", { className: "mcpb-muted mcpb-empty", text: emptyText }));
    return;
  }
  empty?.remove();
  jobs.forEach((job, index) => {
    const row = jobRow(job);
    updateJobRow(row, job);
    if (list.children[index] !== row.node) list.insertBefore(row.node, list.children[index] || null);
  });
}

// -- output folders --

function buildFolderForm() {
  ui.folderList = el("ul", { className: "mcpb-folder-list" });
  ui.folderInput = el("input", { className: "mcpb-input mcpb-folder-input", type: "text", placeholder: "/full/path/to/a/folder", spellcheck: "false" });
  ui.folderError = el("div", { className: "mcpb-error mcpb-small mcpb-folder-error" });
  const add = el("button", { className: "mcpb-btn mcpb-folder-add", type: "button", text: "Add" });
  const submit = async () => {
    const path = ui.folderInput.value.trim();
    if (!path) return;
    ui.folderError.textContent = "";
    try {
      const data = await post("/mcp-bridge/output-folders", { add: path });
      state.folders = { ...state.folders, extra: data.output_folders };
      ui.folderInput.value = "";
      renderFolders();
    } catch (e) {
      ui.folderError.textContent = String(e.message || e);
    }
  };
  add.addEventListener("click", submit);
  ui.folderInput.addEventListener("keydown", (event) => {
    if (event.key === "Enter") submit();
  });
  ui.folderForm = el("div", { className: "mcpb-row mcpb-folder-form" }, ui.folderInput, add);
  ui.folderNote = el("p", { className: "mcpb-muted mcpb-small" });
  ui.folders.body.append(ui.folderList, ui.folderForm, ui.folderError, ui.folderNote);
}

function renderFolders() {
  const folders = state.folders;
  clear(ui.folderList);
  if (folders.comfyui_output) {
    ui.folderList.append(
      el("li", {}, el("code", { text: folders.comfyui_output }), el("span", { className: "mcpb-muted mcpb-small", text: " (ComfyUI output, always)" })),
    );
  }
  for (const folder of folders.extra || []) {
    const remove = el("button", { className: "mcpb-btn mcpb-folder-remove", type: "button", text: "Remove", title: `Remove ${folder}` });
    remove.addEventListener("click", async () => {
      ui.folderError.textContent = "";
      try {
        const data = await post("/mcp-bridge/output-folders", { remove: folder });
        state.folders = { ...state.folders, extra: data.output_folders };
        renderFolders();
      } catch (e) {
        ui.folderError.textContent = String(e.message || e);
      }
    });
    ui.folderList.append(el("li", { "data-folder": folder }, el("code", { text: folder }), remove));
  }
  ui.folderForm.hidden = !folders.editable;
  ui.folderNote.textContent = folders.editable
    ? "Tools may write output_path files only inside these folders. Changes apply to the next call."
    : `Set by the environment variable ${folders.env_var}; edit it there.`;
}

// -- tool profile: which tools tools/list shows --

const PROFILE_NOTES = {
  full: "Every tool (about 20 KB of tool list in every conversation).",
  core: "The main nine, the job tools, run_tool and describe_tool (about 12 KB); the rest through run_tool.",
  compact: "generate_image, run_tool and describe_tool (about 5 KB), for small local models.",
};

function buildProfileForm() {
  ui.profileSelect = el("select", { className: "mcpb-input mcpb-profile-select" });
  ui.profileError = el("div", { className: "mcpb-error mcpb-small mcpb-profile-error" });
  ui.profileNote = el("p", { className: "mcpb-muted mcpb-small mcpb-profile-note" });
  ui.profileSelect.addEventListener("change", async () => {
    ui.profileError.textContent = "";
    try {
      const data = await post("/mcp-bridge/tool-profile", { profile: ui.profileSelect.value });
      state.profile = { ...state.profile, value: data.tool_profile };
    } catch (e) {
      ui.profileError.textContent = String(e.message || e);
    }
    renderProfile();
  });
  ui.profile.body.append(ui.profileSelect, ui.profileNote, ui.profileError);
}

function renderProfile() {
  const profile = state.profile;
  if (!profile) return;
  clear(ui.profileSelect);
  for (const choice of profile.choices || []) ui.profileSelect.append(el("option", { value: choice, text: choice }));
  ui.profileSelect.value = profile.value;
  ui.profileSelect.disabled = !profile.editable;
  ui.profileNote.textContent = profile.editable
    ? `${PROFILE_NOTES[profile.value] || ""} Every tool stays callable; clients are told when this changes.`
    : `Set by the environment variable ${profile.env_var}; edit it there.`;
}

// -- badge and mounting --

function renderBadge() {
  const text = state.active > 0 ? String(state.active) : "";
  const tab = app.extensionManager?.sidebarTab?.sidebarTabs?.find?.((t) => t.id === TAB_ID);
  if (tab) {
    if (tab.iconBadge !== text) tab.iconBadge = text; // the sidebar store is reactive
  } else if (ui.domBadgeHost) {
    ui.domBadge.textContent = text;
    ui.domBadge.hidden = !text;
  }
  if (ui.floatBadge) {
    ui.floatBadge.textContent = text;
    ui.floatBadge.hidden = !text;
  }
}

function mountSidebar() {
  const manager = app.extensionManager;
  if (!manager || typeof manager.registerSidebarTab !== "function") return false;
  manager.registerSidebarTab({
    id: TAB_ID,
    icon: "pi pi-server",
    title: "MCP",
    tooltip: "MCP bridge: endpoint, clients and running tool calls",
    type: "custom",
    iconBadge: "",
    render: (container) => {
      container.append(ui.root);
      refresh();
    },
  });
  return true;
}

function mountFloating() {
  const panel = el("div", { className: "mcpb-floating", hidden: true }, ui.root);
  ui.floatBadge = el("span", { className: "mcpb-badge", hidden: true });
  const button = el("button", { className: "mcpb-float-button", type: "button", title: "MCP bridge" }, "MCP", ui.floatBadge);
  button.addEventListener("click", () => {
    panel.hidden = !panel.hidden;
    if (!panel.hidden) refresh();
  });
  document.body.append(panel, button);
}

const STYLE = `
.mcpb-root { padding: 8px 10px; font-size: 13px; color: var(--fg-color, #ddd); display: flex; flex-direction: column; gap: 10px; overflow-y: auto; height: 100%; box-sizing: border-box; }
.mcpb-section h3 { font-size: 13px; margin: 0 0 4px; text-transform: uppercase; letter-spacing: .04em; opacity: .8; }
.mcpb-section h4 { font-size: 12px; margin: 8px 0 4px; opacity: .8; }
.mcpb-body { display: flex; flex-direction: column; gap: 4px; }
.mcpb-row { display: flex; gap: 6px; align-items: center; flex-wrap: wrap; }
.mcpb-muted { opacity: .7; }
.mcpb-small { font-size: 11px; }
.mcpb-error { color: var(--error-text, #f66); }
.mcpb-root p { margin: 2px 0; }
.mcpb-dot { display: inline-block; width: 9px; height: 9px; border-radius: 50%; margin-right: 6px; }
.mcpb-up { background: #3c3; } .mcpb-down { background: #c33; }
.mcpb-url, .mcpb-token-value { font-size: 12px; overflow-wrap: anywhere; background: var(--comfy-input-bg, #222); padding: 2px 4px; border-radius: 3px; flex: 1 1 auto; }
.mcpb-snippet { font-size: 11px; white-space: pre-wrap; overflow-wrap: anywhere; background: var(--comfy-input-bg, #222); padding: 6px; border-radius: 4px; margin: 4px 0; max-height: 220px; overflow: auto; }
.mcpb-btn { font-size: 12px; padding: 2px 8px; border-radius: 4px; border: 1px solid var(--border-color, #555); background: var(--comfy-input-bg, #333); color: var(--input-text, #ddd); cursor: pointer; }
.mcpb-btn:disabled { opacity: .5; cursor: default; }
.mcpb-danger { border-color: #a44; }
.mcpb-setup summary { cursor: pointer; }
.mcpb-session, .mcpb-job { border: 1px solid var(--border-color, #444); border-radius: 4px; padding: 4px 6px; }
.mcpb-job-list { display: flex; flex-direction: column; gap: 6px; }
.mcpb-job-tool { font-weight: 600; }
.mcpb-job-state { font-size: 11px; padding: 0 4px; border-radius: 3px; background: var(--comfy-input-bg, #333); }
.mcpb-state-running { background: #246; } .mcpb-state-succeeded { background: #264; }
.mcpb-state-failed, .mcpb-state-cancelled, .mcpb-state-interrupted { background: #622; }
.mcpb-job-elapsed { margin-left: auto; font-size: 11px; }
.mcpb-job-summary { font-size: 11px; word-break: break-word; white-space: pre-wrap; }
.mcpb-bar { height: 6px; background: var(--comfy-input-bg, #333); border-radius: 3px; overflow: hidden; margin: 3px 0; }
.mcpb-bar-fill { height: 100%; width: 0; background: var(--p-primary-color, #4a8); transition: width .2s; }
.mcpb-job-message { flex: 1 1 auto; }
.mcpb-thumbs { display: flex; gap: 4px; flex-wrap: wrap; }
.mcpb-thumb img { width: 64px; height: 64px; object-fit: cover; border-radius: 3px; display: block; }
.mcpb-folder-list { margin: 0; padding-left: 16px; }
.mcpb-folder-list li { margin: 2px 0; word-break: break-all; }
.mcpb-folder-list .mcpb-btn { margin-left: 6px; }
.mcpb-input { flex: 1 1 auto; min-width: 120px; font-size: 12px; padding: 2px 4px; background: var(--comfy-input-bg, #222); color: var(--input-text, #ddd); border: 1px solid var(--border-color, #555); border-radius: 3px; }
.mcpb-publish-form[hidden] { display: none; }
.mcpb-publish-form, .mcpb-edit-form { display: flex; flex-direction: column; gap: 4px; border: 1px solid var(--border-color, #444); border-radius: 4px; padding: 6px; }
.mcpb-publish-form textarea, .mcpb-edit-form textarea { resize: vertical; font-family: inherit; }
.mcpb-publish-source[data-source="app-mode"], .mcpb-publish-source[data-source="published"] { color: var(--p-primary-color, #4a8); }
.mcpb-picker { display: flex; flex-direction: column; gap: 4px; max-height: 340px; overflow-y: auto; }
.mcpb-picker-group { border-left: 2px solid var(--border-color, #555); padding-left: 6px; }
.mcpb-picker-node { background: none; border: none; color: inherit; font-weight: 600; font-size: 12px; padding: 0; cursor: pointer; text-align: left; }
.mcpb-picker-node:hover { text-decoration: underline; }
.mcpb-pick-label { display: flex; gap: 4px; align-items: center; font-size: 12px; cursor: pointer; }
.mcpb-arg-name { flex: 0 1 150px; min-width: 90px; }
.mcpb-published { border: 1px solid var(--border-color, #444); border-radius: 4px; padding: 4px 6px; display: flex; flex-direction: column; gap: 2px; }
.mcpb-published-list { display: flex; flex-direction: column; gap: 6px; }
.mcpb-published-name { font-weight: 600; }
.mcpb-last-runs { margin: 0; padding-left: 16px; }
.mcpb-floating { position: fixed; right: 12px; bottom: 52px; width: 380px; max-height: 70vh; z-index: 1000; background: var(--comfy-menu-bg, #222); border: 1px solid var(--border-color, #555); border-radius: 6px; overflow: auto; }
.mcpb-float-button { position: fixed; right: 12px; bottom: 12px; z-index: 1000; padding: 4px 10px; border-radius: 14px; border: 1px solid var(--border-color, #555); background: var(--comfy-menu-bg, #222); color: var(--fg-color, #ddd); cursor: pointer; }
.mcpb-badge { display: inline-block; min-width: 16px; margin-left: 6px; padding: 0 4px; border-radius: 8px; background: #c33; color: #fff; font-size: 11px; text-align: center; }
`;

app.registerExtension({
  name: EXTENSION,
  async setup() {
    // Listeners first: an event is delivered only to listeners registered before it arrives.
    listen();
    document.head.append(el("style", { "data-mcp-bridge": true, text: STYLE }));
    ui.root = buildRoot();
    if (!mountSidebar()) mountFloating();
    await Promise.all([refresh(), loadPublished()]);
    setInterval(() => {
      for (const [id, row] of ui.jobRows) {
        const job = state.jobs.get(id);
        if (job && !finished(job)) updateElapsed(row, job);
      }
      if (ui.root?.isConnected) {
        const metas = ui.sessions.body.querySelectorAll(".mcpb-session-meta");
        metas.forEach((node, i) => state.sessions[i] && (node.textContent = sessionMeta(state.sessions[i])));
      }
    }, 1000);
  },
});
