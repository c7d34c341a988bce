"""inpaint and outpaint through an MCP client on a real ComfyUI: the pixels outside the mask stay."""

from __future__ import annotations

import base64
import io
import random
from pathlib import Path
from typing import Any

import pytest
from _mcp_clients import text
from mcp.types import CallToolResult
from PIL import Image, ImageChops

from testbed.mcp_client import connect
from testbed.server import ComfyServer
from testbed.tiny_models import CONTROLNET_A_NAME

pytestmark = pytest.mark.anyio
BOX = (16, 16, 48, 48)  # left, top, right, bottom of the repainted square


def b64(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def source() -> Image.Image:
    """A gradient with some colour: every pixel differs from its neighbours' rows."""
    grey = Image.linear_gradient("L").resize((64, 64))
    return Image.merge("RGB", (grey, grey.rotate(90), Image.new("L", (64, 64), 90)))


def mask(size: tuple[int, int], box: tuple[int, int, int, int] | None) -> Image.Image:
    image = Image.new("L", size, 0)
    if box is not None:
        image.paste(255, box)
    return image


def args(**extra: Any) -> dict[str, Any]:
    return {"prompt": "a window", "steps": 2, "sampler": "euler", "seed": random.randrange(2**40), **extra}


async def result_image(comfy: ComfyServer, result: CallToolResult) -> Image.Image:
    assert not result.is_error, text(result)
    assert result.structured_content is not None
    (image,) = result.structured_content["images"]
    with Image.open(Path(comfy.output_dir, image["subfolder"], image["filename"])) as im:
        return im.convert("RGB")


def changed(a: Image.Image, b: Image.Image, box: tuple[int, int, int, int]) -> bool:
    return ImageChops.difference(a.crop(box), b.crop(box)).getbbox() is not None


def outside_identical(a: Image.Image, b: Image.Image, box: tuple[int, int, int, int]) -> bool:
    """Every pixel outside ``box`` is the same in ``a`` and ``b``."""
    hole = a.copy()
    hole.paste((0, 0, 0), box)
    other = b.copy()
    other.paste((0, 0, 0), box)
    return ImageChops.difference(hole, other).getbbox() is None


async def test_inpaint_keeps_every_pixel_outside_the_mask_and_repaints_inside(comfy: ComfyServer) -> None:
    original = source()
    transparent = original.convert("RGBA")
    transparent.paste((0, 0, 0, 0), BOX)
    async with connect("streamable-2025", comfy.url) as client:
        given = await client.call_tool(
            "inpaint", args(input_image=b64(original), mask=b64(mask((64, 64), BOX)))
        )
        alpha = await client.call_tool("inpaint", args(input_image=b64(transparent), grow_mask_by=0))
        half = mask((32, 32), (8, 8, 24, 24))  # the same square at half size: resized to 64 x 64
        resized = await client.call_tool(
            "inpaint",
            args(
                input_image=b64(original),
                mask=b64(half),
                controlnets=[{"image": b64(original), "model": CONTROLNET_A_NAME}],
            ),
        )
        queued = comfy.get_json("/queue")
        black = await client.call_tool(
            "inpaint", args(input_image=b64(original), mask=b64(mask((64, 64), None)))
        )
    out = await result_image(comfy, given)
    assert out.size == (64, 64)
    assert outside_identical(out, original, BOX) and changed(out, original, BOX)
    out = await result_image(comfy, alpha)
    assert outside_identical(out, original, BOX) and changed(out, original, BOX)  # transparent = repaint
    out = await result_image(comfy, resized)
    margin = (BOX[0] - 2, BOX[1] - 2, BOX[2] + 2, BOX[3] + 2)  # bilinear resizing softens the edge
    assert outside_identical(out, original, margin) and changed(out, original, BOX)
    assert black.is_error and "all black: nothing to repaint" in text(black), text(black)
    assert comfy.get_json("/queue") == queued == {"queue_running": [], "queue_pending": []}


async def test_outpaint_extends_the_canvas_and_keeps_the_original(comfy: ComfyServer) -> None:
    original = source()
    async with connect("streamable-2026", comfy.url) as client:
        result = await client.call_tool("outpaint", args(input_image=b64(original), top=32, right=16))
    out = await result_image(comfy, result)
    assert out.size == (80, 96)
    assert ImageChops.difference(out.crop((0, 32, 64, 96)), original).getbbox() is None
    assert ImageChops.difference(
        out.crop((0, 0, 80, 32)), Image.new("RGB", (80, 32), (127, 127, 127))
    ).getbbox()
