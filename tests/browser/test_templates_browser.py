"""ComfyUI's templates in the real frontend (issue 23).

- The oracle: every template of the pinned package whose node types this ComfyUI has is loaded into the
  frontend (the pinned 1.32.9 and App Mode's 1.49.6), and ``app.graphToPrompt()`` — what the Run button
  queues — is compared with the bridge's conversion of the same file, node by node (class types,
  widget values, links; node ids may differ by a mapping). The figures go to
  ``artifacts/templates_oracle_<frontend>.json``, which bench/templates.py prints.
- The template browser lists no entry of the bridge (its tool specs are no graphs the editor opens).
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from mcp_bridge.comfyui.adapter import _node_input  # the adapter's own reading of a node definition
from mcp_bridge.comfyui.backend import NodeInput
from mcp_bridge.specs.templates import index_entries
from mcp_bridge.specs.ui_graph import convert
from testbed.server import ComfyServer

EXTENSION = "comfyui-mcp-bridge"


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - the test's own server
        return json.loads(response.read())


def definitions(server: ComfyServer) -> dict[str, dict[str, NodeInput]]:
    """Every node's inputs as the bridge reads them, from the server's /object_info."""
    found: dict[str, dict[str, NodeInput]] = {}
    for kind, info in get_json(server.url + "/object_info").items():
        declared = info.get("input") or {}
        found[kind] = {
            name: _node_input(spec, section == "required")
            for section in ("required", "optional")
            for name, spec in (declared.get(section) or {}).items()
        }
    return found


def canonical(prompt: dict[str, Any]) -> list[str]:
    """Each node as a hash of its class, widget values and (recursively) the nodes its links come from:
    equal lists are the same graph whatever the node ids (the frontend renumbers the inner nodes of a
    subgraph whose ids another subgraph uses)."""
    memo: dict[str, str] = {}

    def label(node_id: str) -> str:
        if node_id not in memo:
            memo[node_id] = "(cycle)"
            node = prompt[node_id]
            parts = [
                (k, label(str(v[0])), v[1]) if isinstance(v, list) and len(v) == 2 and str(v[0]) in prompt
                else (k, json.dumps(v, sort_keys=True))
                for k, v in sorted(node["inputs"].items())
            ]  # fmt: skip
            memo[node_id] = hashlib.sha256(repr((node["class_type"], parts)).encode()).hexdigest()
        return memo[node_id]

    return sorted(label(node_id) for node_id in prompt)


def plain(prompt: dict[str, Any], defs: dict[str, dict[str, NodeInput]]) -> dict[str, Any]:
    """Class and declared inputs of each node: inputs no node declares (the frontend's own widgets of
    3D viewers and PreviewAny, sent or not) are ignored by ComfyUI and not compared."""
    return {
        i: {
            "class_type": n["class_type"],
            "inputs": {k: v for k, v in n["inputs"].items() if k in defs[n["class_type"]]},
        }
        for i, n in prompt.items()
    }


def differences(theirs: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    """What differs, node by node (at most 5 lines)."""
    found = [f"node {i}: only in the frontend's" for i in theirs if i not in ours]
    found += [f"node {i}: only in ours" for i in ours if i not in theirs]
    for node_id in sorted(set(theirs) & set(ours)):
        a, b = theirs[node_id], ours[node_id]
        if a["class_type"] != b["class_type"]:
            found.append(f"node {node_id}: {a['class_type']} vs {b['class_type']}")
            continue
        for name in sorted(set(a["inputs"]) | set(b["inputs"])):
            left, right = a["inputs"].get(name, "<none>"), b["inputs"].get(name, "<none>")
            if left != right:
                found.append(f"{a['class_type']} {node_id}.{name}: {left!r:.60} vs {right!r:.60}")
    return found[:5]


def frontend_prompt(page: Any, workflow: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(
        """async (wf) => {
            await window.app.loadGraphData(wf, true, false, null);
            return (await window.app.graphToPrompt()).output;
        }""",
        workflow,
    )
    return result


def compare_all(server: ComfyServer, browser: Any, artifacts: Path, label: str) -> dict[str, Any]:
    defs = definitions(server)
    index = get_json(server.url + "/templates/index.json")
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(server.url + "/")
    page.wait_for_function("() => window.app && window.app.graph", timeout=60_000)
    report: dict[str, Any] = {"compared": 0, "equal": 0, "skipped": 0, "different": {}}
    try:
        for _category, entry in index_entries(index):
            workflow = get_json(f"{server.url}/templates/{entry['name']}.json")
            ours = convert(workflow, defs.get)
            if ours.missing:
                report["skipped"] += 1
                continue
            theirs = plain(frontend_prompt(page, workflow), defs)
            report["compared"] += 1
            diff = differences(theirs, plain(ours.prompt, defs))
            if diff and canonical(theirs) == canonical(plain(ours.prompt, defs)):
                report["equal_up_to_ids"] = report.get("equal_up_to_ids", 0) + 1
                diff = []
            if diff:
                report["different"][entry["name"]] = diff
            else:
                report["equal"] += 1
    finally:
        context.close()
    (artifacts / f"templates_oracle_{label}.json").write_text(json.dumps(report, indent=1))
    return report


@pytest.mark.parametrize("which", ["pinned", "app_mode"])
def test_the_bridge_converts_every_template_as_the_frontend_does(
    which: str, ui_server: ComfyServer, app_mode_server: ComfyServer, browser: Any, artifacts: Path
) -> None:
    server = ui_server if which == "pinned" else app_mode_server
    report = compare_all(server, browser, artifacts, which)
    assert report["compared"] > 100
    assert report["different"] == {}, json.dumps(report["different"], indent=1)[:4000]


def test_the_template_browser_lists_no_bridge_entry(ui_server: ComfyServer, browser: Any) -> None:
    assert EXTENSION not in get_json(ui_server.url + "/api/workflow_templates")  # what the browser reads
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    try:
        page.goto(ui_server.url + "/")
        page.wait_for_function("() => window.app?.extensionManager?.command", timeout=60_000)
        page.evaluate(
            """() => {
                const commands = window.app.extensionManager.command;
                const ids = commands.commands.map((c) => c.id);
                return commands.execute(ids.find((i) => /BrowseTemplates/.test(i)));
            }"""
        )
        dialog = page.get_by_role("dialog")
        dialog.get_by_text("Getting Started", exact=True).first.wait_for(
            timeout=30_000
        )  # the browser is open
        dialog.get_by_text("Image API", exact=True).first.scroll_into_view_if_needed()
        assert dialog.get_by_text(EXTENSION, exact=True).count() == 0
    finally:
        context.close()
