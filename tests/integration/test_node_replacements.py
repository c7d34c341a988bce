"""Node replacements (issue 24 #15) in a real ComfyUI: a workflow naming a removed node type runs through
the bridge where the running ComfyUI knows its successor, as ComfyUI's own ``POST /prompt`` runs it.

The 0.3.x trees have no replacements; the test node ``node_replacements`` gives the server one of the
shape newer ComfyUIs have (``PromptServer.node_replace_manager.apply_replacements``)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from _mcp_clients import connect, ok, text

from testbed import comfy_api
from testbed.server import LATEST, ComfyServer

pytestmark = pytest.mark.anyio


def old_workflow() -> dict[str, Any]:
    """EmptyImage as a removed node type named it (``EmptyImageOld``: w, h, colour) -> SaveImage."""
    colour = random.randrange(2**24)
    return {
        "1": {"class_type": "EmptyImageOld", "inputs": {"w": 64, "h": 32, "colour": colour}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "replaced"}},
    }


async def test_a_removed_node_type_runs_as_its_replacement(comfy_factory: Callable[..., ComfyServer]) -> None:
    server = comfy_factory(LATEST, env={"COMFYUI_MCP_DEBUG_TOOLS": "1"}, test_nodes=["node_replacements"])
    async with connect("streamable-2025", server.url) as client:
        result = await client.call_tool("debug_run_workflow", {"workflow": old_workflow()})
    data = ok(result)
    assert data["state"] == "succeeded", text(result)
    (image,) = data["images"]
    assert (server.output_dir / image["subfolder"] / image["filename"]).is_file()
    (prompt_id,) = data["prompt_ids"]
    entry = comfy_api.history(server.url, prompt_id)
    assert entry is not None
    ran = entry["prompt"][2]  # what ComfyUI queued: the successor, with the inputs renamed
    assert ran["1"]["class_type"] == "EmptyImage" and ran["1"]["inputs"]["height"] == 32


async def test_without_replacements_the_removed_type_is_refused(comfy: ComfyServer) -> None:
    async with connect("streamable-2025", comfy.url) as client:
        result = await client.call_tool("debug_run_workflow", {"workflow": old_workflow()})
    assert result.is_error and "EmptyImageOld" in text(result)
