"""Published workflows hold the line on a real ComfyUI: what they may write, the tool names they may take,
the bodies the publish route reads — at publish and when a stored one is loaded at start."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from testbed.mcp_client import connect
from testbed.server import ComfyServer
from tests.integration.test_publish import panel, publish_body, txt2img

pytestmark = pytest.mark.anyio

DATASET = "SaveImageDataSetToFolder"  # core since ComfyUI 0.3.6x: writes output/<folder_name>, unchecked


def dataset_workflow(folder: str) -> dict[str, Any]:
    """txt2img whose images also go to ComfyUI's dataset node, into ``folder``."""
    inputs = {"images": ["8", 0], "folder_name": folder, "filename_prefix": "i"}
    return {**txt2img(), "10": {"class_type": DATASET, "inputs": inputs, "_meta": {"title": "Dataset"}}}


def needs_dataset_node(comfy: ComfyServer) -> None:
    nodes = comfy.get_json(f"/object_info/{DATASET}")
    if not (isinstance(nodes, dict) and DATASET in nodes):
        pytest.skip(f"ComfyUI {comfy.version} has no {DATASET} node")


async def test_an_output_node_that_writes_where_its_text_says_is_refused_at_publish(
    comfy: ComfyServer, tmp_path: Path
) -> None:
    needs_dataset_node(comfy)
    outside = tmp_path / "escaped"
    name = f"dataset_{uuid.uuid4().hex[:6]}"
    body = publish_body(name, dataset_workflow(str(outside)), [["6", "text"], ["10", "folder_name"]], [])
    status, reply = await panel(comfy, "/mcp-bridge/workflows/publish", body)
    assert status == 400 and "folder_name" in reply["error"], reply
    body = publish_body(name, dataset_workflow(str(outside)), [["6", "text"]], ["9", "10"])
    status, reply = await panel(comfy, "/mcp-bridge/workflows/publish", body)  # a saved folder: the same
    assert status == 400 and DATASET in reply["error"], reply
    async with connect("streamable-2026", comfy.url) as client:
        assert name not in {t.name for t in (await client.list_tools()).tools}
    assert not outside.exists()


async def test_a_stored_tool_that_writes_anywhere_is_unavailable_after_a_restart(
    comfy_factory: Callable[..., ComfyServer], tmp_path: Path
) -> None:
    base = tmp_path / "comfy"
    stored = base / "user" / "comfyui-mcp-bridge" / "tools"
    stored.mkdir(parents=True)
    outside = tmp_path / "escaped"
    spec = {
        **dataset_workflow("dataset"),
        "_bridge": {
            "tool": "dataset_dump",
            "description": "Save images into a folder (stored by an older bridge)",
            "inputs": {
                "text": {"kind": "text", "node": "6", "input": "text"},
                "folder": {"kind": "text", "node": "10", "input": "folder_name"},
            },
            "outputs": ["9", "10"],
            "published": {"id": "0123456789ab"},
        },
    }
    (stored / "0123456789ab.json").write_text(json.dumps(spec))
    server = comfy_factory(base_dir=base)
    needs_dataset_node(server)
    async with connect("streamable-2025", server.url) as client:
        listed = await client.call_tool("list_workflows", {})
        (view,) = (listed.structured_content or {})["workflows"]
        assert not view["available"] and "folder_name" in view["problem"], view
        result = await client.call_tool("dataset_dump", {"text": "a cat", "folder": str(outside)})
        assert result.is_error and "folder_name" in str(result.content[0])
    assert not outside.exists()
