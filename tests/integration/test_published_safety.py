"""Published workflows hold the line on a real ComfyUI: what they may write, the tool names they may take,
the bodies the publish route reads — at publish and when a stored one is loaded at start."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp.types import PaginatedRequestParams

from testbed.mcp_client import connect
from testbed.server import VERSIONS, ComfyServer
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


def stored_spec(tool: str, workflow: dict[str, Any], inputs: dict[str, Any], **meta: Any) -> dict[str, Any]:
    """A published tool as an earlier bridge (or a hand) stored it."""
    bridge = {"tool": tool, "description": f"{tool}: stored before a restart", "inputs": inputs, **meta}
    return {**workflow, "_bridge": bridge}


def wordy(n: int, inputs: int = 32, chars: int = 2000) -> dict[str, Any]:
    """A stored tool with ``inputs`` texts, each with a long saved text and description of its own."""
    workflow = txt2img()
    described: dict[str, Any] = {}
    saved = (f"a long saved prompt of tool {n}, " * chars)[:chars]
    for k in range(inputs):
        workflow[str(100 + k)] = {"class_type": "CLIPTextEncode", "inputs": {"text": saved, "clip": ["4", 1]}}
        described[f"text_{k}"] = {"kind": "text", "node": str(100 + k), "input": "text", "description": saved}
    return stored_spec(f"wordy_{n}", workflow, described)


@pytest.fixture(scope="module")
def restarted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComfyServer]:
    """A ComfyUI started with published tools already stored: one whose output node writes where its
    text says, one named like a built-in tool, and 198 wordy ones (200 in all, the cap)."""
    base = tmp_path_factory.mktemp("restarted")
    stored = base / "user" / "comfyui-mcp-bridge" / "tools"
    stored.mkdir(parents=True)
    text = {"text": {"kind": "text", "node": "6", "input": "text"}}
    folder = {"folder": {"kind": "text", "node": "10", "input": "folder_name"}}
    specs = {
        "0123456789ab": stored_spec(
            "dataset_dump", dataset_workflow("dataset"), text | folder, outputs=["9", "10"]
        ),
        "0123456789ac": stored_spec("generate_image", txt2img(), text),
        **{f"{n:012x}": wordy(n) for n in range(198)},  # 200 with the two above: the cap
    }
    for entry_id, spec in specs.items():
        (stored / f"{entry_id}.json").write_text(json.dumps(spec))
    server = ComfyServer(VERSIONS[0], base_dir=base)
    server.start()
    yield server
    server.stop()


async def test_a_stored_tool_that_writes_anywhere_is_unavailable_after_a_restart(
    restarted: ComfyServer, tmp_path: Path
) -> None:
    needs_dataset_node(restarted)
    outside = tmp_path / "escaped"
    async with connect("streamable-2025", restarted.url) as client:
        listed = await client.call_tool("list_workflows", {})
        views = {v["name"]: v for v in (listed.structured_content or {})["workflows"]}
        assert not views["dataset_dump"]["available"] and "folder_name" in views["dataset_dump"]["problem"]
        result = await client.call_tool("dataset_dump", {"text": "a cat", "folder": str(outside)})
        assert result.is_error and "folder_name" in str(result.content[0])
    assert not outside.exists()


async def test_a_stored_tool_named_like_a_built_in_never_runs_in_its_place(restarted: ComfyServer) -> None:
    async with connect("streamable-2026", restarted.url) as client:
        listed = await client.call_tool("list_workflows", {})
        views = {v["name"]: v for v in (listed.structured_content or {})["workflows"]}
        assert not views["generate_image"]["available"]
        assert "built-in tool's" in views["generate_image"]["problem"]
        arguments = {"prompt": "a red square", "width": 64, "height": 64, "steps": 1}
        result = await client.call_tool("generate_image", arguments)  # the published one takes only "text"
        assert not result.is_error, result.content


async def test_two_hundred_wordy_published_tools_list_in_pages_an_sdk_client_reads(
    restarted: ComfyServer,
) -> None:
    async with connect("streamable-2025", restarted.url) as client:
        names: list[str] = []
        cursor = None
        pages = 0
        while True:
            page = await client.session.list_tools(params=PaginatedRequestParams(cursor=cursor))
            pages += 1
            names += [tool.name for tool in page.tools]
            cursor = page.next_cursor
            if cursor is None:
                break
        info = await client.call_tool("get_server_info", {})  # the session lives on
    assert not info.is_error
    assert pages > 1 and {f"wordy_{n}" for n in range(198)} <= set(names) and len(names) == len(set(names))
