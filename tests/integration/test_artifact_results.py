"""Artifacts from a real ComfyUI: animations and videos come back typed, described and previewed."""

from __future__ import annotations

import base64
import io
import random
import uuid
from typing import Any

import av
import pytest
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, ImageContent, ResourceLink
from PIL import Image

from testbed.mcp_client import connect
from testbed.server import ComfyServer

pytestmark = pytest.mark.anyio


def frames(width: int = 48, height: int = 32, batch: int = 4) -> dict[str, Any]:
    """``batch`` frames of different colours in node "1", model-free (EmptyImage, ImageBatch).

    The colours differ from frame to frame (libwebp merges identical frames) and from run to run
    (ComfyUI's cache would skip a repeated prompt).
    """
    base = random.randrange(2**23)
    nodes: dict[str, Any] = {}
    for i in range(batch):
        inputs = {"width": width, "height": height, "batch_size": 1, "color": (base + i * 0x3F1F7F) % 2**24}
        nodes[f"e{i}"] = {"class_type": "EmptyImage", "inputs": inputs}
    last = "e0"
    for i in range(1, batch):
        name = "1" if i == batch - 1 else f"b{i}"
        nodes[name] = {"class_type": "ImageBatch", "inputs": {"image1": [last, 0], "image2": [f"e{i}", 0]}}
        last = name
    if batch == 1:
        nodes["1"] = nodes.pop("e0")
    return nodes


def save_animated_webp(fps: float = 8.0) -> dict[str, Any]:
    node = {
        "class_type": "SaveAnimatedWEBP",
        "inputs": {
            "images": ["1", 0],
            "filename_prefix": "artifacts/anim",
            "fps": fps,
            "lossless": True,
            "quality": 80,
            "method": "default",
        },
    }
    return {**frames(), "2": node}


def save_webm() -> dict[str, Any]:
    inputs = {
        "images": ["1", 0],
        "filename_prefix": "artifacts/clip",
        "codec": "vp9",
        "fps": 8.0,
        "crf": 32.0,
    }
    return {**frames(64, 48), "2": {"class_type": "SaveWEBM", "inputs": inputs}}


def save_mp4() -> dict[str, Any]:
    return {
        **frames(64, 48),
        "2": {"class_type": "CreateVideo", "inputs": {"images": ["1", 0], "fps": 8.0}},
        "3": {
            "class_type": "SaveVideo",
            "inputs": {
                "video": ["2", 0],
                "filename_prefix": "artifacts/clip",
                "format": "mp4",
                "codec": "h264",
            },
        },
    }


async def run(comfy: ComfyServer, workflow: dict[str, Any]) -> tuple[CallToolResult, dict[str, Any], bytes]:
    """Run a workflow with the debug tool; the result, its one file entry and resources/read's bytes."""
    async with connect("streamable-2025", comfy.url) as client:
        result = await client.call_tool("debug_run_workflow", {"workflow": workflow})
        assert not result.is_error, result.content
        data = result.structured_content
        assert data is not None and data["state"] == "succeeded"
        (entry,) = data["images"]
        (link,) = [b for b in result.content if isinstance(b, ResourceLink)]
        assert (str(link.uri), link.mime_type, link.size) == (
            entry["uri"],
            entry["mime_type"],
            entry["bytes"],
        )
        read = await client.read_resource(str(link.uri))
    (blob,) = read.contents
    assert blob.mime_type == entry["mime_type"]  # the file's own type, not the template's
    return result, entry, base64.b64decode(blob.blob)  # type: ignore[union-attr]


def poster(result: CallToolResult) -> Image.Image:
    """The result's one preview, checked to be a small still WebP."""
    (preview,) = [b for b in result.content if isinstance(b, ImageContent)]
    assert preview.mime_type == "image/webp"
    im = Image.open(io.BytesIO(base64.b64decode(preview.data)))
    assert im.format == "WEBP" and not getattr(im, "is_animated", False) and max(im.size) <= 512
    return im


async def test_an_animated_webp_comes_back_as_an_animation_with_a_poster(comfy: ComfyServer) -> None:
    result, entry, data = await run(comfy, save_animated_webp(fps=8.0))
    path = comfy.output_dir / entry["subfolder"] / entry["filename"]
    assert (entry["kind"], entry["mime_type"]) == ("animation", "image/webp")
    assert (entry["width"], entry["height"], entry["frames"]) == (48, 32, 4)
    assert (entry["fps"], entry["duration_s"]) == (8.0, 0.5)
    assert entry["bytes"] == path.stat().st_size and data == path.read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        assert im.n_frames == 4
    assert poster(result).size == (48, 32)


@pytest.mark.parametrize(
    ("workflow", "mime", "codec"),
    [(save_webm, "video/webm", "vp9"), (save_mp4, "video/mp4", "h264")],
    ids=["SaveWEBM", "SaveVideo-mp4"],
)
async def test_a_video_comes_back_typed_with_its_frames_and_a_poster(
    comfy: ComfyServer, workflow: Any, mime: str, codec: str
) -> None:
    result, entry, data = await run(comfy, workflow())
    path = comfy.output_dir / entry["subfolder"] / entry["filename"]
    assert (entry["kind"], entry["mime_type"]) == ("video", mime)
    assert (entry["width"], entry["height"], entry["frames"], entry["fps"]) == (64, 48, 4, 8.0)
    assert entry["duration_s"] == pytest.approx(0.5, abs=0.13)
    assert data == path.read_bytes()
    with av.open(io.BytesIO(data)) as container:
        assert container.streams.video[0].codec_context.name == codec
    assert poster(result).size == (64, 48)


async def test_a_still_png_reads_back_typed_image_png(comfy: ComfyServer) -> None:
    workflow = {
        **frames(batch=1),
        "2": {
            "class_type": "SaveImage",
            "inputs": {"images": ["1", 0], "filename_prefix": "artifacts/still"},
        },
    }
    result, entry, data = await run(comfy, workflow)
    assert (entry["kind"], entry["mime_type"]) == ("image", "image/png")
    assert "frames" not in entry and data.startswith(b"\x89PNG")
    assert poster(result).size == (48, 32)


async def test_reading_a_file_above_the_cap_names_its_view_url(comfy: ComfyServer) -> None:
    name = f"big-{uuid.uuid4().hex}.mp4"
    big = comfy.output_dir / "artifacts" / name
    big.parent.mkdir(parents=True, exist_ok=True)
    big.write_bytes(b"\0" * (16 * 1024 * 1024 + 1))  # one byte above max_resource_read_bytes' default
    try:
        async with connect("streamable-2025", comfy.url) as client:
            with pytest.raises(MCPError) as caught:
                await client.read_resource(f"comfy://output/artifacts/{name}")
    finally:
        big.unlink()
    message = str(caught.value)
    assert f"comfy://output/artifacts/{name}" in message and "max_resource_read_bytes" in message
    assert f"/view?filename={name}&subfolder=artifacts&type=output" in message
