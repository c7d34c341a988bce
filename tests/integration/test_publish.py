"""Workflows published as tools through the panel route, on a real ComfyUI, seen by real MCP clients."""

from __future__ import annotations

import asyncio
import base64
import io
import shutil
import uuid
from typing import Any

import aiohttp
import pytest
from mcp.types import CallToolResult, ImageContent, ToolListChangedNotification
from PIL import Image

from testbed.mcp_client import connect
from testbed.server import MODELS, ComfyServer
from testbed.tiny_models import CHECKPOINT_NAME

pytestmark = pytest.mark.anyio


def txt2img(ckpt: str = CHECKPOINT_NAME) -> dict[str, Any]:
    """A 64x64 text-to-image workflow in API format, as app.graphToPrompt() gives it (with titles)."""

    def node(cls: str, title: str, **inputs: Any) -> dict[str, Any]:
        return {"class_type": cls, "inputs": inputs, "_meta": {"title": title}}

    return {
        "3": node("KSampler", "KSampler", model=["4", 0], positive=["6", 0], negative=["7", 0],
                  latent_image=["5", 0], seed=1, steps=2, cfg=7.0, sampler_name="euler",
                  scheduler="normal", denoise=1.0),
        "4": node("CheckpointLoaderSimple", "Load Checkpoint", ckpt_name=ckpt),
        "5": node("EmptyLatentImage", "Empty Latent Image", width=64, height=64, batch_size=1),
        "6": node("CLIPTextEncode", "Positive", text="a red square", clip=["4", 1]),
        "7": node("CLIPTextEncode", "Negative", text="", clip=["4", 1]),
        "8": node("VAEDecode", "VAE Decode", samples=["3", 0], vae=["4", 2]),
        "9": node("SaveImage", "Save Image", images=["8", 0], filename_prefix="ComfyUI"),
    }  # fmt: skip


def webp_workflow() -> dict[str, Any]:
    """LoadImage → SaveAnimatedWEBP: INT, FLOAT, BOOLEAN and a short COMBO, and an image input."""
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": "publish-source.png"},
              "_meta": {"title": "Source"}},
        "2": {
            "class_type": "SaveAnimatedWEBP",
            "inputs": {"images": ["1", 0], "filename_prefix": "ComfyUI", "fps": 6.0, "lossless": False,
                       "quality": 80, "method": "default"},
            "_meta": {"title": "Animation"},
        },
    }  # fmt: skip


def png(color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), color).save(out, "PNG")
    return out.getvalue()


async def panel(comfy: ComfyServer, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """One panel request as ComfyUI's page sends it (same origin, JSON)."""
    headers = {"Origin": comfy.url}
    async with aiohttp.ClientSession() as http:
        if body is None:
            async with http.get(comfy.url + path, headers=headers) as reply:
                return reply.status, await reply.json()
        async with http.post(comfy.url + path, json=body, headers=headers) as reply:
            return reply.status, await reply.json()


def publish_body(
    name: str, prompt: dict[str, Any], inputs: list[list[Any]], outputs: list[str]
) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"{name}: a workflow published in a test",
        "workflow": f"{name}.json",
        "prompt": prompt,
        "selection": {"inputs": inputs, "outputs": outputs},
    }


class Changes:
    """Counts tools/list_changed notifications a client receives."""

    def __init__(self) -> None:
        self.count = 0
        self.event = asyncio.Event()

    async def __call__(self, message: Any) -> None:
        if isinstance(message, ToolListChangedNotification):
            self.count += 1
            self.event.set()

    async def next(self) -> None:
        await asyncio.wait_for(self.event.wait(), 30)
        self.event.clear()


async def test_publish_call_and_unpublish_live(comfy: ComfyServer) -> None:
    name = f"my_txt2img_{uuid.uuid4().hex[:6]}"
    changes = Changes()
    async with connect("streamable-2025", comfy.url, message_handler=changes) as client:
        caps = client.server_capabilities
        assert caps is not None and caps.tools is not None and caps.tools.list_changed
        before = {t.name for t in (await client.list_tools()).tools}
        assert name not in before
        body = publish_body(
            name, txt2img(), [["6", "text"], ["3", "seed"], ["3", "steps"], ["4", "ckpt_name"]], ["9"]
        )
        status, reply = await panel(comfy, "/mcp-bridge/workflows/publish", body)
        assert status == 200, reply
        await changes.next()
        tools = {t.name: t for t in (await client.list_tools()).tools}
        schema = tools[name].input_schema
        props = schema["properties"]
        assert set(props) == {"text", "seed", "steps", "ckpt_name", "output_path", "overwrite"}
        assert props["text"]["type"] == "string" and "Positive" in props["text"]["description"]
        assert props["steps"]["type"] == "integer" and props["steps"]["minimum"] == 1
        assert props["steps"]["default"] == 2  # the value the user saved
        assert "enum" not in props["ckpt_name"] and "checkpoints" in props["ckpt_name"]["description"]
        assert "random" in props["seed"]["description"]
        assert not schema.get("required")

        result = await client.call_tool(name, {"text": "a blue circle", "steps": 1, "seed": 7})
        assert not result.is_error, result.content
        assert any(isinstance(c, ImageContent) for c in result.content)
        assert result.structured_content is not None and result.structured_content["seed"] == 7

        refused = await client.call_tool("run_workflow", {"name": name, "arguments": {"steps": 0}})
        assert refused.is_error and "steps" in str(refused.content[0])
        ran = await client.call_tool("run_workflow", {"name": name, "arguments": {"steps": 1}})
        assert not ran.is_error, ran.content

        listed = await client.call_tool("list_workflows", {})
        found = [w for w in (listed.structured_content or {})["workflows"] if w["name"] == name]
        assert (
            found
            and found[0]["available"]
            and set(found[0]["inputs"]) == {"text", "seed", "steps", "ckpt_name"}
        )

        status, views = await panel(comfy, "/mcp-bridge/workflows")
        mine = next(w for w in views["workflows"] if w["name"] == name)
        assert len(mine["last_runs"]) == 2
        status, _ = await panel(comfy, "/mcp-bridge/workflows/unpublish", {"id": mine["id"]})
        assert status == 200
        await changes.next()
        assert name not in {t.name for t in (await client.list_tools()).tools}
        gone = await client.call_tool("run_workflow", {"name": name})
        assert gone.is_error and "no published workflow" in str(gone.content[0])


async def test_schemas_image_input_and_bad_arguments(comfy: ComfyServer) -> None:
    (comfy.input_dir / "publish-source.png").write_bytes(png())
    name = f"animate_{uuid.uuid4().hex[:6]}"
    inputs = [["1", "image"], ["2", "fps"], ["2", "lossless"], ["2", "quality"], ["2", "method"]]
    status, reply = await panel(
        comfy, "/mcp-bridge/workflows/publish", publish_body(name, webp_workflow(), inputs, [])
    )
    assert status == 200, reply
    async with connect("streamable-2026", comfy.url) as client:
        tool = next(t for t in (await client.list_tools()).tools if t.name == name)
        props = tool.input_schema["properties"]
        assert tool.input_schema["required"] == ["image"] and props["image"]["type"] == "string"
        assert props["fps"]["type"] == "number" and props["fps"]["minimum"] == 0.01
        assert props["lossless"]["type"] == "boolean" and props["lossless"]["default"] is False
        assert props["quality"] == {**props["quality"], "type": "integer", "minimum": 0, "maximum": 100}
        assert props["method"]["enum"] == ["default", "fastest", "slowest"]
        before = sorted(p.name for p in comfy.output_dir.rglob("*.webp"))
        for bad, word in (({"quality": 101}, "quality"), ({"method": "bogus"}, "method"),
                          ({"lossless": "yes"}, "lossless"), ({"fps": "6"}, "fps")):  # fmt: skip
            arguments = {"image": base64.b64encode(png()).decode(), **bad}
            result = await client.call_tool(name, arguments)
            assert result.is_error and word in str(result.content[0]), (bad, result.content)
        assert sorted(p.name for p in comfy.output_dir.rglob("*.webp")) == before  # nothing was queued
        data = base64.b64encode(png((10, 200, 90))).decode()
        result = await client.call_tool(name, {"image": data, "quality": 50, "lossless": True})
        assert isinstance(result, CallToolResult) and not result.is_error, result.content
        assert result.structured_content is not None and result.structured_content["quality"] == 50


async def test_refusals_and_a_tool_whose_checkpoint_is_removed(comfy: ComfyServer) -> None:
    unknown = {**txt2img(), "10": {"class_type": "NoSuchNodePack", "inputs": {}}}
    status, reply = await panel(
        comfy, "/mcp-bridge/workflows/publish", publish_body("x1", unknown, [["6", "text"]], [])
    )
    assert status == 400 and "NoSuchNodePack" in reply["error"]
    status, reply = await panel(
        comfy, "/mcp-bridge/workflows/publish", publish_body("get_job", txt2img(), [["6", "text"]], [])
    )
    assert status == 400 and "already exists" in reply["error"]
    status, reply = await panel(
        comfy, "/mcp-bridge/workflows/publish", publish_body("x2", txt2img(), [["9", "filename_prefix"]], [])
    )
    assert status == 400 and "filename_prefix" in reply["error"]

    folder = comfy.base_dir / "models" / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    removable = f"removable-{uuid.uuid4().hex[:6]}.safetensors"
    shutil.copyfile(MODELS / "checkpoints" / CHECKPOINT_NAME, folder / removable)
    name = f"fragile_{uuid.uuid4().hex[:6]}"
    status, reply = await panel(
        comfy, "/mcp-bridge/workflows/publish", publish_body(name, txt2img(removable), [["6", "text"]], [])
    )
    assert status == 200, reply
    (folder / removable).unlink()
    async with connect("streamable-2025", comfy.url) as client:
        listed = await client.call_tool("list_workflows", {})
        mine = next(w for w in (listed.structured_content or {})["workflows"] if w["name"] == name)
        assert not mine["available"] and removable in mine["problem"]
        result = await client.call_tool(name, {"text": "anything"})
        assert result.is_error and removable in str(result.content[0])
