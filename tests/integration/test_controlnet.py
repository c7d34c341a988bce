"""ControlNets on generate_image and img2img through an MCP client, with the tiny ControlNets."""

from __future__ import annotations

import base64
import io
import random
from pathlib import Path
from typing import Any

import pytest
from _mcp_clients import text
from PIL import Image, ImageDraw

from testbed.mcp_client import connect
from testbed.server import ComfyServer
from testbed.tiny_models import CONTROLNET_A_NAME, CONTROLNET_B_NAME

pytestmark = pytest.mark.anyio


def control_image() -> str:
    """A white square on black: an edge map as it is, and something Canny finds edges in."""
    image = Image.new("RGB", (64, 64))
    ImageDraw.Draw(image).rectangle((16, 16, 47, 47), fill=(255, 255, 255))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def cn(model: str = CONTROLNET_A_NAME, **extra: Any) -> dict[str, Any]:
    return {"image": control_image(), "model": model, **extra}


async def pixels(comfy: ComfyServer, client: Any, tool: str, arguments: dict[str, Any]) -> bytes:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, text(result)
    assert result.structured_content is not None
    (image,) = result.structured_content["images"]
    with Image.open(Path(comfy.output_dir, image["subfolder"], image["filename"])) as im:
        return im.tobytes()  # pixels only: the PNG's metadata holds the (different) workflow


async def test_a_controlnet_steers_generate_image_and_strength_0_is_no_controlnet(comfy: ComfyServer) -> None:
    base = {"prompt": "a house", "width": 64, "height": 64, "steps": 2, "seed": random.randrange(2**40)}
    async with connect("streamable-2025", comfy.url) as client:
        plain = await pixels(comfy, client, "generate_image", base)
        steered = await pixels(comfy, client, "generate_image", {**base, "controlnets": [cn()]})
        zero = await pixels(comfy, client, "generate_image", {**base, "controlnets": [cn(strength=0.0)]})
        stacked = {**base, "controlnets": [cn(), cn(CONTROLNET_B_NAME, strength=0.7, end_percent=0.5)]}
        two = await pixels(comfy, client, "generate_image", stacked)
        canny = await pixels(
            comfy, client, "generate_image", {**base, "controlnets": [cn(preprocessor="canny")]}
        )
    assert steered != plain, "the ControlNet did not change the image"
    assert zero == plain, "strength 0 is not the same as no ControlNet"
    assert two not in (plain, steered), "the second ControlNet of the stack had no effect"
    assert canny not in (plain, steered), "the Canny preprocessor changed nothing"
    assert "controlnet keys" not in comfy.log_text()


async def test_img2img_takes_controlnets_and_an_unknown_model_names_the_closest(comfy: ComfyServer) -> None:
    base = {
        "prompt": "a house",
        "input_image": control_image(),
        "steps": 2,
        "denoise": 0.8,
        "seed": random.randrange(2**40),
    }
    async with connect("streamable-2026", comfy.url) as client:
        plain = await pixels(comfy, client, "img2img", base)
        steered = await pixels(comfy, client, "img2img", {**base, "controlnets": [cn(CONTROLNET_B_NAME)]})
        wrong = await client.call_tool(
            "img2img", {**base, "controlnets": [cn("tiny-controlnet-c.safetensors")]}
        )
        listed = await client.call_tool("list_controlnets", {})
    assert steered != plain
    assert wrong.is_error and CONTROLNET_A_NAME in text(wrong) and "list_controlnets" in text(wrong), text(
        wrong
    )
    assert listed.structured_content is not None
    assert listed.structured_content["names"] == [CONTROLNET_A_NAME, CONTROLNET_B_NAME]
    assert listed.structured_content["preprocessors"][:2] == ["none", "canny"]
