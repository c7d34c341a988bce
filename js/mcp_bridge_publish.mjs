// The publish feature of the MCP bridge's panel: pick the open workflow's widgets and outputs, publish
// it as an MCP tool, list, edit and unpublish the published ones. Loaded by mcp_bridge_panel.js (an
// .mjs module, so ComfyUI does not import it as an extension of its own).

import { api } from "../../scripts/api.js";
import { app } from "../../scripts/app.js";
import { ago, answer, clear, el, post, state, ui } from "./mcp_bridge_common.mjs";

// -- publish the open workflow as a tool --
//
// The graph is converted by the frontend itself (app.graphToPrompt(), as the Run button does), so
// subgraphs, reroutes, primitives and bypassed nodes come out as ComfyUI would queue them. The inputs
// offered are the widget values of that conversion; App Mode's extra.linearData is the default pick.

const NOT_INPUTS = new Set(["filename_prefix"]); // the bridge names the files it saves
const MAX_DESCRIPTION = 2000;

function toolSlug(text) {
  const word = String(text || "").toLowerCase().replace(/[^a-z0-9]+/g, "_").replace(/^[^a-z]+/, "").replace(/_+$/, "");
  return word.slice(0, 64) || "my_workflow";
}

function workflowName() {
  const active = app.extensionManager?.workflow?.activeWorkflow;
  const name = active?.filename || active?.path || "";
  return String(name).replace(/^.*\//, "").replace(/(\.app)?\.json$/i, "") || "workflow";
}

function isOutputNode(id, classType) {
  const registered = globalThis.LiteGraph?.registered_node_types?.[classType];
  if (registered?.nodeData) return Boolean(registered.nodeData.output_node);
  return Boolean(graphNode(id)?.constructor?.nodeData?.output_node);
}

function graphNode(id) {
  const graph = app.graph;
  if (!graph?.getNodeById) return null;
  return graph.getNodeById(Number(id)) || graph.getNodeById(id) || null;
}

// Select (and optionally centre) the node on the canvas: where a picked widget lives.
function highlightNode(id, centre) {
  const node = graphNode(id);
  const canvas = app.canvas;
  if (!node || !canvas) return;
  try {
    canvas.selectNode?.(node, false);
    if (centre) canvas.centerOnNode?.(node);
    canvas.setDirty?.(true, true);
  } catch (_) {
    // a frontend without these canvas calls: the picker still works
  }
}

function pickKey(nodeId, widget) {
  return JSON.stringify([String(nodeId), String(widget)]);
}

function shortValue(value) {
  const text = typeof value === "string" ? JSON.stringify(value) : String(value);
  return text.length > 40 ? `${text.slice(0, 39)}…` : text;
}

// The API prompt as the picker lists it: nodes with their widget values, and which are outputs.
function promptNodes(output) {
  return Object.entries(output || {}).map(([id, node]) => ({
    id,
    classType: String(node.class_type),
    title: String(node._meta?.title || node.class_type),
    widgets: Object.entries(node.inputs || {})
      .filter(([name, value]) => !Array.isArray(value) && !NOT_INPUTS.has(name))
      .map(([name, value]) => ({ name, value })),
    output: isOutputNode(id, String(node.class_type)),
  }));
}

// A selection shaped like App Mode's linearData (App Mode's own, or the one a tool was published with)
// as picks of the picker; entries the conversion has no widget or output node for are reported.
function knownSelection(linear, nodes) {
  if (!linear || !(linear.inputs?.length || linear.outputs?.length)) return null;
  const widgets = new Set(nodes.flatMap((n) => n.widgets.map((w) => pickKey(n.id, w.name))));
  const outputs = new Set(nodes.filter((n) => n.output).map((n) => n.id));
  const inputs = [];
  const missing = [];
  for (const item of linear.inputs || []) {
    if (!Array.isArray(item) || item.length < 2) continue;
    const key = pickKey(item[0], item[1]);
    const name = typeof item[2]?.name === "string" ? item[2].name : "";
    if (widgets.has(key)) inputs.push([String(item[0]), String(item[1]), name]);
    else missing.push(`${item[0]}.${item[1]}`);
  }
  const picked = (linear.outputs || []).map(String);
  missing.push(...picked.filter((id) => !outputs.has(id)).map((id) => `output ${id}`));
  return { inputs, outputs: picked.filter((id) => outputs.has(id)), missing };
}

function defaultDescription(name, nodes) {
  const outputs = nodes.filter((n) => n.output).map((n) => n.title);
  const steps = nodes.filter((n) => !n.output).map((n) => n.title);
  const text = `Runs the ComfyUI workflow "${name}": ${[...new Set(steps)].join(", ")} → ${outputs.join(", ")}.`;
  return text.slice(0, MAX_DESCRIPTION);
}

async function openPublishForm(replace = null) {
  ui.publishMessage.textContent = "";
  let converted;
  try {
    converted = await app.graphToPrompt();
  } catch (error) {
    ui.publishMessage.textContent = `The workflow could not be converted: ${error?.message || error}`;
    ui.publishMessage.className = "mcpb-error mcpb-small mcpb-publish-message";
    return;
  }
  const nodes = promptNodes(converted.output);
  const name = workflowName();
  const linear = converted.workflow?.extra?.linearData ?? app.graph?.extra?.linearData;
  // The default picks: App Mode's selection, else (replacing a tool) the tool's own, else none.
  const fromApp = knownSelection(linear, nodes);
  const fromTool = fromApp ? null : knownSelection(replace?.selection, nodes);
  const source = fromApp ? { kind: "app-mode", ...fromApp } : fromTool ? { kind: "published", ...fromTool } : null;
  const picks = source ? source.inputs : [];
  ui.form = {
    replace,
    name,
    nodes,
    prompt: converted.output,
    inputs: new Map(picks.map(([id, widget]) => [pickKey(id, widget), [id, widget]])), // in pick order
    argNames: new Map(picks.filter((p) => p[2]).map(([id, widget, arg]) => [pickKey(id, widget), arg])),
    outputs: new Set(source ? source.outputs : nodes.filter((n) => n.output).map((n) => n.id)),
    source,
  };
  renderPublishForm(replace?.name || toolSlug(name), replace?.description || defaultDescription(name, nodes));
}

function renderPublishForm(toolName, description) {
  const form = ui.form;
  const body = clear(ui.publishForm);
  ui.publishForm.hidden = false;
  ui.publishOpen.hidden = true;
  const nameInput = el("input", { className: "mcpb-input mcpb-publish-name", type: "text", value: toolName, spellcheck: "false", maxlength: "64" });
  const describe = el("textarea", { className: "mcpb-input mcpb-publish-description", rows: "3", maxlength: String(MAX_DESCRIPTION) });
  describe.value = description;
  const error = el("div", { className: "mcpb-error mcpb-small mcpb-publish-error", role: "alert" });
  const submit = el("button", { className: "mcpb-btn mcpb-publish-submit", type: "button", text: form.replace ? "Publish again" : "Publish" });
  const cancel = el("button", { className: "mcpb-btn mcpb-publish-cancel", type: "button", text: "Cancel" });
  submit.addEventListener("click", () => submitPublish(nameInput.value.trim(), describe.value.trim(), submit, error));
  cancel.addEventListener("click", closePublishForm);
  body.append(
    el("p", { className: "mcpb-muted mcpb-small", text: `Workflow "${form.name}"${form.replace ? `, replacing the tool ${form.replace.name}` : ""}.` }),
    selectionNote(form.source),
    el("label", { className: "mcpb-label", text: "Tool name" }),
    nameInput,
    el("label", { className: "mcpb-label", text: "Description (what the assistant reads)" }),
    describe,
    el("h4", { text: "Inputs: the widgets the tool takes" }),
    inputPicker(form),
    el("h4", { text: "Outputs" }),
    outputPicker(form),
    el("div", { className: "mcpb-row" }, submit, cancel),
    error,
  );
}

const SOURCE_NOTES = {
  "app-mode": "Inputs and outputs come from this workflow's App Mode selection (extra.linearData); change them here if you like.",
  published: "Inputs and outputs as the tool has them now; change them here if you like.",
};

function selectionNote(source) {
  if (!source) {
    return el("p", { className: "mcpb-muted mcpb-small mcpb-publish-source", "data-source": "picker", text: "Tick the widgets the tool takes as inputs; every other widget keeps its saved value." });
  }
  const note = el("p", { className: "mcpb-small mcpb-publish-source", "data-source": source.kind, text: SOURCE_NOTES[source.kind] });
  if (!source.missing.length) return note;
  return el("div", {}, note, el("p", { className: "mcpb-error mcpb-small", text: `Not in ComfyUI's conversion of the graph, left out: ${source.missing.join(", ")}` }));
}

function inputPicker(form) {
  const list = el("div", { className: "mcpb-picker" });
  for (const node of form.nodes) {
    if (!node.widgets.length) continue;
    const head = el("button", { className: "mcpb-picker-node", type: "button", title: "Show this node on the canvas", text: `${node.title} · ${node.classType} #${node.id}` });
    head.addEventListener("click", () => highlightNode(node.id, true));
    const group = el("div", { className: "mcpb-picker-group", "data-node": node.id }, head);
    for (const widget of node.widgets) group.append(widgetRow(form, node, widget));
    list.append(group);
  }
  return list;
}

function widgetRow(form, node, widget) {
  const key = pickKey(node.id, widget.name);
  const box = el("input", { type: "checkbox", className: "mcpb-pick", "data-node": node.id, "data-widget": widget.name, checked: form.inputs.has(key) });
  const argName = el("input", {
    className: "mcpb-input mcpb-arg-name",
    type: "text",
    placeholder: "argument name (optional)",
    spellcheck: "false",
    "data-node": node.id,
    "data-widget": widget.name,
    value: form.argNames.get(key) || "",
    hidden: !form.inputs.has(key),
  });
  box.addEventListener("change", () => {
    if (box.checked) form.inputs.set(key, [node.id, widget.name]);
    else form.inputs.delete(key);
    argName.hidden = !box.checked;
    if (box.checked) highlightNode(node.id, false);
  });
  argName.addEventListener("input", () => form.argNames.set(key, argName.value.trim()));
  const label = el("label", { className: "mcpb-pick-label" }, box, el("code", { text: widget.name }), el("span", { className: "mcpb-muted", text: ` = ${shortValue(widget.value)}` }));
  return el("div", { className: "mcpb-row mcpb-pick-row" }, label, argName);
}

function outputPicker(form) {
  const list = el("div", { className: "mcpb-picker" });
  const outputs = form.nodes.filter((n) => n.output);
  if (!outputs.length) list.append(el("p", { className: "mcpb-error mcpb-small", text: "This workflow has no output node (Save Image, Save Video, …)." }));
  for (const node of outputs) {
    const box = el("input", { type: "checkbox", className: "mcpb-pick-output", "data-node": node.id, checked: form.outputs.has(node.id) });
    box.addEventListener("change", () => {
      if (box.checked) form.outputs.add(node.id);
      else form.outputs.delete(node.id);
      highlightNode(node.id, false);
    });
    list.append(el("label", { className: "mcpb-row mcpb-pick-label" }, box, el("span", { text: `${node.title} · ${node.classType} #${node.id}` })));
  }
  return list;
}

function selectionBody(form) {
  // In pick order (App Mode's first), each [node_id, widget] or [node_id, widget, {name}] (linearData's shape).
  const inputs = [...form.inputs].map(([key, [id, widget]]) => {
    const name = form.argNames.get(key);
    return name ? [id, widget, { name }] : [id, widget];
  });
  return { inputs, outputs: form.nodes.filter((n) => form.outputs.has(n.id)).map((n) => n.id) };
}

async function submitPublish(name, description, button, error) {
  const form = ui.form;
  error.textContent = "";
  button.disabled = true;
  const body = { name, description, workflow: form.name, prompt: form.prompt, selection: selectionBody(form) };
  if (form.replace) body.id = form.replace.id;
  try {
    const data = await post("/mcp-bridge/workflows/publish", body);
    closePublishForm();
    ui.publishMessage.className = "mcpb-small mcpb-publish-message";
    ui.publishMessage.textContent = `Published ${data.workflow.name}: MCP clients can call it now.`;
    await loadPublished();
  } catch (e) {
    error.textContent = String(e.message || e); // the route's own words
  } finally {
    button.disabled = false;
  }
}

function closePublishForm() {
  ui.form = null;
  clear(ui.publishForm);
  ui.publishForm.hidden = true;
  ui.publishOpen.hidden = false;
}

export function buildPublish() {
  ui.publishOpen = el("button", { className: "mcpb-btn mcpb-publish-open", type: "button", text: "Publish this workflow as an MCP tool…" });
  ui.publishOpen.addEventListener("click", () => openPublishForm());
  ui.publishForm = el("div", { className: "mcpb-publish-form", hidden: true });
  ui.publishMessage = el("p", { className: "mcpb-small mcpb-publish-message" });
  ui.publish.body.append(
    el("p", { className: "mcpb-muted mcpb-small", text: "Make the workflow open in the editor a tool that MCP clients can call." }),
    ui.publishOpen,
    ui.publishForm,
    ui.publishMessage,
  );
  ui.publishedList = el("div", { className: "mcpb-published-list" });
  ui.publishedError = el("div", { className: "mcpb-error mcpb-small mcpb-published-error" });
  ui.published.body.append(ui.publishedList, ui.publishedError);
}

// -- published tools --

let publishedTimer = null;

export async function loadPublished() {
  try {
    const data = await answer(await api.fetchApi("/mcp-bridge/workflows", { cache: "no-store" }));
    state.published = data.workflows || [];
    state.publishedError = null;
  } catch (error) {
    state.publishedError = String(error?.message || error);
  }
  renderPublished();
}

export function loadPublishedSoon() {
  clearTimeout(publishedTimer);
  publishedTimer = setTimeout(loadPublished, 300);
}

export function renderPublished() {
  if (!ui.root) return;
  const open = new Map([...ui.publishedList.querySelectorAll(".mcpb-edit-form")].map((f) => [f.dataset.id, f]));
  const list = clear(ui.publishedList);
  ui.publishedError.textContent = state.publishedError || "";
  if (!state.published.length) {
    list.append(el("p", { className: "mcpb-muted mcpb-empty", text: "No workflow published yet." }));
    return;
  }
  for (const tool of state.published) {
    const item = publishedItem(tool);
    const editing = open.get(tool.id); // an edit in progress survives a refresh of the list
    if (editing) item.append(editing);
    list.append(item);
  }
}

function publishedItem(tool) {
  const item = el("div", { className: "mcpb-published", "data-tool": tool.name, "data-id": tool.id, "data-available": tool.available ? "1" : "0" });
  const status = tool.available ? "available" : `unavailable: ${tool.problem || "?"}`;
  const error = el("div", { className: "mcpb-error mcpb-small mcpb-published-item-error", role: "alert" });
  const inputs = Object.entries(tool.inputs || {}).map(([name, input]) => `${name} (${input.kind})`);
  item.append(
    el("div", { className: "mcpb-row" }, el("span", { className: `mcpb-dot ${tool.available ? "mcpb-up" : "mcpb-down"}` }), el("span", { className: "mcpb-published-name", text: tool.name }), el("span", { className: "mcpb-muted mcpb-small", text: tool.workflow ? ` from ${tool.workflow}` : "" })),
    el("div", { className: "mcpb-small mcpb-published-description", text: tool.description }),
    el("div", { className: "mcpb-muted mcpb-small mcpb-published-inputs", text: `Inputs: ${inputs.join(", ") || "none"}` }),
    el("div", { className: `mcpb-small mcpb-published-status ${tool.available ? "mcpb-muted" : "mcpb-error"}`, text: status }),
    lastRuns(tool.last_runs || []),
    publishedActions(tool, item, error),
    error,
  );
  return item;
}

function lastRuns(runs) {
  const list = el("ul", { className: "mcpb-last-runs" });
  if (!runs.length) list.append(el("li", { className: "mcpb-muted mcpb-small", text: "Not run yet." }));
  for (const run of runs) {
    const when = ago(run.finished || run.created);
    const why = run.error?.message ? ` · ${run.error.message}` : "";
    list.append(el("li", { className: "mcpb-small mcpb-last-run", "data-state": run.state, text: `${run.state} · ${when}${why}` }));
  }
  return list;
}

function publishedActions(tool, item, error) {
  const edit = el("button", { className: "mcpb-btn mcpb-published-edit", type: "button", text: "Edit" });
  const again = el("button", { className: "mcpb-btn mcpb-published-replace", type: "button", text: "Replace with the open workflow", title: "Publish the workflow open in the editor under this tool" });
  const remove = el("button", { className: "mcpb-btn mcpb-danger mcpb-published-unpublish", type: "button", text: "Unpublish" });
  edit.addEventListener("click", () => item.append(editForm(tool)));
  again.addEventListener("click", () => openPublishForm({ id: tool.id, name: tool.name, description: tool.description, selection: tool.selection }));
  remove.addEventListener("click", async () => {
    if (remove.dataset.confirm !== "1") {
      remove.dataset.confirm = "1";
      remove.textContent = "Confirm: unpublish";
      return;
    }
    remove.disabled = true;
    try {
      await post("/mcp-bridge/workflows/unpublish", { id: tool.id });
      await loadPublished();
    } catch (e) {
      error.textContent = String(e.message || e);
      remove.disabled = false;
    }
  });
  return el("div", { className: "mcpb-row" }, edit, again, remove);
}

function editForm(tool) {
  const existing = ui.publishedList.querySelector(`.mcpb-edit-form[data-id="${CSS.escape(tool.id)}"]`);
  if (existing) return existing;
  const error = el("div", { className: "mcpb-error mcpb-small mcpb-edit-error", role: "alert" });
  const name = el("input", { className: "mcpb-input mcpb-edit-name", type: "text", value: tool.name, spellcheck: "false", maxlength: "64" });
  const describe = el("textarea", { className: "mcpb-input mcpb-edit-description", rows: "3", maxlength: String(MAX_DESCRIPTION) });
  describe.value = tool.description;
  const save = el("button", { className: "mcpb-btn mcpb-edit-save", type: "button", text: "Save" });
  const cancel = el("button", { className: "mcpb-btn", type: "button", text: "Cancel" });
  const form = el("div", { className: "mcpb-edit-form", "data-id": tool.id }, name, describe, el("div", { className: "mcpb-row" }, save, cancel), error);
  cancel.addEventListener("click", () => form.remove());
  save.addEventListener("click", async () => {
    error.textContent = "";
    save.disabled = true;
    try {
      await post("/mcp-bridge/workflows/edit", { id: tool.id, name: name.value.trim(), description: describe.value.trim() });
      form.remove();
      await loadPublished();
    } catch (e) {
      error.textContent = String(e.message || e);
      save.disabled = false;
    }
  });
  return form;
}
