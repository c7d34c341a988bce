"""What tools/list costs and shows (issue 25): the profiles, run_tool and describe_tool, argument groups
said once, and the leaned schemas — against the in-memory ComfyUI. bench/toollist.py measures a real one."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from mcp_bridge.bridge import build_mcp
from mcp_bridge.config import Settings
from mcp_bridge.mcp import lean, profiles
from tests.unit.fake_comfy import fake_services
from tests.unit.test_tools_fake import BASE, text

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def listed(root: Path, profile: str = "full") -> AsyncIterator[tuple[Client, dict[str, Any]]]:
    async with (
        fake_services(root, Settings(tool_profile=profile)) as services,
        Client(build_mcp(services)) as c,
    ):
        tools = {
            t.name: t.model_dump(by_alias=True, exclude_none=True, mode="json")
            for t in (await c.list_tools()).tools
        }
        yield c, tools


def size(tools: dict[str, Any]) -> int:
    return len(json.dumps(list(tools.values()), separators=(",", ":")))


async def test_each_profile_lists_its_tools_within_its_budget(tmp_path: Path) -> None:
    async with listed(tmp_path) as (_, full), listed(tmp_path, "core") as (_, core):
        async with listed(tmp_path, "compact") as (_, compact):
            pass
    assert not set(profiles.ROUTERS) & set(full)
    assert set(core) == profiles.CORE
    assert set(compact) == {"generate_image", "describe_tool", "run_tool"}
    # The goals of issue 25 (bench/toollist.py measures a real ComfyUI, whose list has the video tools too).
    assert size(full) <= 24 * 1024 and size(core) <= 12 * 1024 and size(compact) <= 6 * 1024
    # run_tool names what the profile leaves out; full lists none of that.
    assert (
        "inpaint (" in compact["run_tool"]["description"]
        and "list_loras (" in compact["run_tool"]["description"]
    )
    assert (
        "list_controlnets (" in core["run_tool"]["description"]
        and "list_loras" not in core["run_tool"]["description"]
    )


async def test_a_tool_the_profile_hides_is_still_called_by_name(tmp_path: Path) -> None:
    async with listed(tmp_path, "compact") as (client, tools):
        assert "list_loras" not in tools
        result = await client.call_tool("list_loras", {})
    assert not result.is_error and (result.structured_content or {})["names"] == [
        "a.safetensors",
        "b.safetensors",
    ]


async def test_run_tool_runs_a_tool_with_its_own_validation_and_errors(tmp_path: Path) -> None:
    async with listed(tmp_path, "compact") as (client, _):
        ran = await client.call_tool("run_tool", {"tool": "img2img", "arguments": {"prompt": "x"}})
        direct = await client.call_tool("img2img", {"prompt": "x"})
        made = await client.call_tool("run_tool", {"tool": "generate_image", "arguments": BASE})
        unknown = await client.call_tool("run_tool", {"tool": "paint", "arguments": {}})
        nested = await client.call_tool("run_tool", {"tool": "run_tool", "arguments": {}})
        not_object = await client.call_tool("run_tool", {"tool": "list_loras", "arguments": [1]})
    assert ran.is_error and direct.is_error and text(ran) == text(direct)
    assert "input_image: required" in text(ran)
    assert not made.is_error and (made.structured_content or {})["seed"] == 7
    assert unknown.is_error and "no tool named 'paint'" in text(unknown) and "inpaint" in text(unknown)
    assert nested.is_error and "call it directly" in text(nested)
    assert not_object.is_error and "arguments: must be an object" in text(not_object)


async def test_describe_tool_gives_the_full_schema_of_any_tool(tmp_path: Path) -> None:
    async with listed(tmp_path, "compact") as (client, _):
        described = await client.call_tool("describe_tool", {"tool": "img2img"})
        unknown = await client.call_tool("describe_tool", {"tool": "nope"})
    tool = json.loads(text(described))
    steps = tool["inputSchema"]["properties"]["steps"]
    assert tool["name"] == "img2img" and (steps["minimum"], steps["maximum"], steps["default"]) == (
        1,
        150,
        28,
    )
    assert "list_loras" in tool["inputSchema"]["properties"]["loras"]["description"]
    assert unknown.is_error and "no tool named 'nope'" in text(unknown)


async def test_an_argument_group_is_said_once_and_later_tools_name_its_owner(tmp_path: Path) -> None:
    async with listed(tmp_path) as (_, tools):
        pass
    first = tools["generate_image"]["inputSchema"]["properties"]
    later = tools["img2img"]
    assert first["loras"]["items"]["properties"]["strength_model"]["maximum"] == 4
    assert later["inputSchema"]["properties"]["loras"] == {"type": "array"}
    assert later["inputSchema"]["properties"]["steps"] == {"type": "integer"}
    told = later["inputSchema"]["description"]
    assert told.startswith("As generate_image's: ") and "loras" in told
    assert "minimum" in later["inputSchema"]["properties"]["denoise"]  # its own argument, in full
    # Extension keywords stay where an argument is shared (routing by Mcp-Param-Job-Id needs them).
    assert tools["wait_job"]["inputSchema"]["properties"]["job_id"]["x-mcp-header"] == "Job-Id"


async def test_an_optional_argument_is_advertised_without_null_and_still_takes_it(tmp_path: Path) -> None:
    async with listed(tmp_path) as (client, tools):
        result = await client.call_tool("generate_image", {**BASE, "model": None, "seed": 7})
    model = tools["generate_image"]["inputSchema"]["properties"]["model"]
    assert model["type"] == "string" and "anyOf" not in model and "default" not in model
    assert not result.is_error, text(result)


def test_lean_keeps_bounds_and_null_in_results_and_drops_only_repetition() -> None:
    schema = {
        "title": "Args",
        "description": "Arguments of x.",
        "type": "object",
        "$defs": {
            "Item": {"title": "Item", "description": "An item.", "properties": {"n": {"type": "number"}}}
        },
        "properties": {
            "title": {
                "title": "Title",
                "anyOf": [{"type": "string", "maxLength": 9}, {"type": "null"}],
                "default": None,
            },
            "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}, "default": []},
            "scale": {"type": "number", "maximum": 30.0, "default": 1.0, "description": "A\n    scale."},
        },
    }
    leaned = lean.input_schema(schema)
    assert leaned == {
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": 9},
            "items": {"type": "array", "items": {"properties": {"n": {"type": "number"}}}},
            "scale": {"type": "number", "maximum": 30, "default": 1, "description": "A scale."},
        },
    }
    assert schema["properties"]["title"]["anyOf"]  # the model's own schema is left as it was
    out = lean.output_schema(
        {"properties": {"v": {"anyOf": [{"type": "string"}, {"type": "null"}], "description": "d"}}}
    )
    assert out == {"properties": {"v": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}
