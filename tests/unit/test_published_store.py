"""Stored published tools and ``tool_folders`` specs are checked when they are loaded, not only at publish:
the files may have been written by hand, by an older bridge, or before a built-in tool existed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from mcp_bridge.bridge import build_mcp
from mcp_bridge.comfyui.backend import NodeInput
from mcp_bridge.config import Settings
from mcp_bridge.tools.published import Published
from tests.unit.fake_comfy import fake_services

pytestmark = pytest.mark.anyio

WRITER = {"WriteAnywhere": {"images": NodeInput("IMAGE"), "where": NodeInput("STRING")}}
FAKE: dict[str, Any] = {"extra_nodes": WRITER, "output_nodes": {"WriteAnywhere"}}  # an output node


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def spec(tool: str, *, writer: bool = False) -> dict[str, Any]:
    """A stored published txt2img tool (as the publish route writes it), optionally with a writer node."""
    data = json.loads((Path(__file__).parents[2] / "workflows" / "tools" / "txt2img.json").read_text())
    data["4"]["inputs"]["ckpt_name"] = "tiny.safetensors"
    data["_bridge"] = {
        "tool": tool,
        "description": f"{tool}: stored",
        "inputs": {"text": {"kind": "text", "node": "6", "input": "text"}},
        "published": {"id": "0123456789ab"},
    }
    if writer:
        data["99"] = {"class_type": "WriteAnywhere", "inputs": {"images": ["8", 0], "where": "/tmp/anywhere"}}
    return data


@asynccontextmanager
async def served(root: Path, stored: dict[str, dict[str, Any]], **settings: Any) -> AsyncIterator[Client]:
    folder = root / "published"
    folder.mkdir()
    for entry_id, data in stored.items():
        (folder / f"{entry_id}.json").write_text(json.dumps(data))
    async with fake_services(root, Settings(**settings), **FAKE) as services:
        published = Published(services, folder)
        published.load()
        async with Client(build_mcp(services, published)) as client:
            yield client


async def test_a_stored_tool_with_an_output_node_that_writes_anywhere_is_unavailable(tmp_path: Path) -> None:
    async with served(tmp_path, {"0123456789ab": spec("dataset_dump", writer=True)}) as client:
        listed = await client.call_tool("list_workflows", {})
        (view,) = (listed.structured_content or {})["workflows"]
        assert not view["available"] and "'where'" in view["problem"]
        result = await client.call_tool("dataset_dump", {"text": "x"})
        assert result.is_error and "'where'" in str(result.content[0])
    assert not list((tmp_path / "output").rglob("*.png"))  # nothing was queued


async def test_a_tool_folder_spec_with_an_output_node_that_writes_anywhere_is_left_out(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "tools"
    folder.mkdir()
    (folder / "dump.json").write_text(json.dumps(spec("dataset_dump", writer=True)))
    (folder / "fine.json").write_text(json.dumps(spec("fine_sketch")))
    settings = Settings(tool_folders=[str(folder)])
    async with fake_services(tmp_path, settings, **FAKE) as services:
        assert "fine_sketch" in services.specs.specs and "dataset_dump" not in services.specs.specs
        assert "'where'" in services.specs.problems[str(folder / "dump.json")]
