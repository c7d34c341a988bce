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
from mcp.shared.exceptions import MCPError
from mcp.types import PaginatedRequestParams

from mcp_bridge.bridge import build_mcp
from mcp_bridge.comfyui.backend import NodeInput
from mcp_bridge.config import Settings
from mcp_bridge.specs.publishing import PublishRefused
from mcp_bridge.tools.published import Published
from tests.unit.fake_comfy import FakeComfy, fake_services

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
async def served(
    root: Path, stored: dict[str, dict[str, Any]], **settings: Any
) -> AsyncIterator[tuple[Client, Published]]:
    folder = root / "published"
    folder.mkdir()
    for entry_id, data in stored.items():
        (folder / f"{entry_id}.json").write_text(json.dumps(data))
    async with fake_services(root, Settings(**settings), **FAKE) as services:
        published = Published(services, folder)
        published.load()
        async with Client(build_mcp(services, published)) as client:
            yield client, published


async def test_a_stored_tool_with_an_output_node_that_writes_anywhere_is_unavailable(tmp_path: Path) -> None:
    async with served(tmp_path, {"0123456789ab": spec("dataset_dump", writer=True)}) as (client, _):
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


def wordy(tool: str, inputs: int = 32, chars: int = 2000) -> dict[str, Any]:
    """A stored tool with ``inputs`` text inputs, each with a long saved text and a long description."""
    data = spec(tool)
    saved = (f"a long saved prompt of {tool}, " * chars)[:chars]  # each its own: not shared in the list
    for n in range(inputs):
        data[str(100 + n)] = {"class_type": "CLIPTextEncode", "inputs": {"text": saved, "clip": ["4", 1]}}
        data["_bridge"]["inputs"][f"text_{n}"] = {
            "kind": "text", "node": str(100 + n), "input": "text", "description": saved,
        }  # fmt: skip
    return data


async def test_tools_list_of_200_wordy_published_tools_comes_in_pages_a_client_can_read(
    tmp_path: Path,
) -> None:
    stored = {f"{n:012x}": wordy(f"wordy_{n}") for n in range(200)}
    async with served(tmp_path, stored) as (client, _):
        pages, cursor = [], None
        while True:
            page = await client.session.list_tools(params=PaginatedRequestParams(cursor=cursor))
            pages.append(page)
            cursor = page.next_cursor
            if cursor is None:
                break
        with pytest.raises(MCPError, match="invalid cursor"):
            await client.session.list_tools(params=PaginatedRequestParams(cursor="not a cursor"))
    sizes = [len(page.model_dump_json(by_alias=True, exclude_none=True)) for page in pages]
    assert len(pages) > 1 and max(sizes) < 1024 * 1024, sizes  # an SDK client reads 1 MiB per event
    names = [tool.name for page in pages for tool in page.tools]
    assert len(names) == len(set(names)) and {f"wordy_{n}" for n in range(200)} <= set(names)
    tool = next(t for page in pages for t in page.tools if t.name == "wordy_7")
    text_0 = tool.input_schema["properties"]["text_0"]
    assert "default" not in text_0 and "2000 characters" in text_0["description"]
    assert len(tool.model_dump_json()) <= 16 * 1024


async def test_a_cursor_from_a_list_that_changed_since_is_refused(tmp_path: Path) -> None:
    stored = {f"{n:012x}": wordy(f"wordy_{n}") for n in range(60)}
    async with served(tmp_path, stored) as (client, published):
        first = await client.session.list_tools()
        assert first.next_cursor is not None
        await published.unpublish(f"{0:012x}")  # the listing changes: a tool goes
        with pytest.raises(MCPError, match="changed since this cursor"):
            await client.session.list_tools(params=PaginatedRequestParams(cursor=first.next_cursor))
        again = await client.session.list_tools()
    assert "wordy_0" not in {tool.name for tool in again.tools}


async def test_a_stored_tool_named_like_a_built_in_is_unavailable_and_never_runs_in_its_place(
    tmp_path: Path,
) -> None:
    stored = {"00000000000a": spec("generate_image"), "00000000000b": spec("debug_run_workflow")}
    async with served(tmp_path, stored) as (client, published):
        listed = await client.call_tool("list_workflows", {})
        views = {v["name"]: v for v in (listed.structured_content or {})["workflows"]}
        assert set(views) == {"generate_image", "debug_run_workflow"}
        assert not any(v["available"] for v in views.values())
        assert all("built-in tool's" in str(v["problem"]) for v in views.values())
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert "prompt" in tools["generate_image"].input_schema["properties"]  # the built-in's
        assert "debug_run_workflow" not in tools  # debug_tools is off
        built_in = await client.call_tool("generate_image", {"prompt": "a fox", "width": 64, "height": 64})
        assert not built_in.is_error, built_in.content
        debug = await client.call_tool("debug_run_workflow", {"text": "x"})
        assert debug.is_error
        refused = await client.call_tool(
            "run_workflow", {"name": "generate_image", "arguments": {"text": "x"}}
        )
        assert refused.is_error and "built-in tool's" in str(refused.content[0])
        with pytest.raises(PublishRefused, match="built-in tool's name"):
            await published.edit("00000000000a", None, "a new description")
        renamed = await published.edit("00000000000a", "my_generate", None)
        assert renamed.problem is None
        result = await client.call_tool("my_generate", {"text": "a fox"})
        assert not result.is_error, result.content
    comfy = published.services.comfy
    assert isinstance(comfy, FakeComfy)
    assert len(comfy.queued) == 2  # the built-in's call and the renamed tool's
