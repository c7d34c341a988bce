"""Calls past the size caps are refused before anything is staged or queued, on a real ComfyUI: the
upscaler's scale is the one ComfyUI's loader reads from the model file (issue 24 #2)."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from testbed.mcp_client import connect
from testbed.server import ComfyServer
from testbed.tiny_models import UPSCALE_FACTOR, UPSCALER_NAME

pytestmark = pytest.mark.anyio


def png_b64(size: tuple[int, int]) -> str:
    out = io.BytesIO()
    Image.new("RGB", size, (30, 160, 90)).save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


def staged(comfy: ComfyServer) -> set[str]:
    folder = comfy.input_dir / "mcp"
    return {p.name for p in folder.glob("*")} if folder.is_dir() else set()


async def test_an_upscale_past_the_largest_side_is_refused_with_the_models_scale(comfy: ComfyServer) -> None:
    side = 2048 // UPSCALE_FACTOR + 8  # x4: 2080, over the default max_side of 2048
    before = staged(comfy)
    async with connect("streamable-2026", comfy.url) as client:
        queue = await client.call_tool("get_queue_status", {})
        result = await client.call_tool(
            "upscale_image", {"input_image": png_b64((side, 64)), "upscale_model": UPSCALER_NAME}
        )
        after = await client.call_tool("get_queue_status", {})
    assert result.is_error
    words = str(result.content[0])
    assert f"{side}x64" in words and f"x{UPSCALE_FACTOR}" in words and f"{side * UPSCALE_FACTOR}x256" in words
    assert staged(comfy) == before
    assert after.structured_content == queue.structured_content  # nothing was queued
