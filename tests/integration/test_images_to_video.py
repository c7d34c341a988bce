"""images_to_video and images_to_animation on a real ComfyUI: earlier results become a clip."""

from __future__ import annotations

import random
from typing import Any

import av
import pytest
from mcp.types import CallToolResult
from PIL import Image

from testbed.mcp_client import connect
from testbed.server import ComfyServer

pytestmark = pytest.mark.anyio


def text(result: CallToolResult) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


async def four_images(client: Any, widths: tuple[int, ...] = (64, 64, 64, 64)) -> list[str]:
    """Four generate_image results (a seed sweep), as their comfy:// URIs."""
    uris = []
    for width in widths:
        arguments = {
            "prompt": "a lighthouse",
            "width": width,
            "height": 64,
            "steps": 1,
            "seed": random.randrange(2**40),
        }
        result = await client.call_tool("generate_image", arguments)
        assert not result.is_error, text(result)
        uris.append(result.structured_content["images"][0]["uri"])
    return uris


def queue_length(comfy: ComfyServer) -> int:
    history = comfy.get_json("/history")
    assert isinstance(history, dict)
    return len(history)


async def test_four_earlier_results_become_an_mp4_of_four_frames_and_an_animated_webp(
    comfy: ComfyServer,
) -> None:
    async with connect("streamable-2025", comfy.url) as client:
        uris = await four_images(client)
        video = await client.call_tool("images_to_video", {"images": uris, "fps": 4.0})
        animation = await client.call_tool("images_to_animation", {"images": uris, "fps": 4.0})
    assert not video.is_error and not animation.is_error, text(video) + text(animation)
    (clip,) = video.structured_content["images"]  # type: ignore[index]
    assert (clip["kind"], clip["mime_type"], clip["frames"], clip["fps"]) == ("video", "video/mp4", 4, 4.0)
    assert video.structured_content["input_frames"] == {"frames": 4, "width": 64, "height": 64}  # type: ignore[index]
    with av.open(str(comfy.output_dir / clip["subfolder"] / clip["filename"])) as container:
        assert sum(1 for _ in container.decode(video=0)) == 4
    (anim,) = animation.structured_content["images"]  # type: ignore[index]
    assert (anim["kind"], anim["mime_type"], anim["frames"]) == ("animation", "image/webp", 4)
    with Image.open(comfy.output_dir / anim["subfolder"] / anim["filename"]) as im:
        assert im.n_frames == 4 and im.size == (64, 64)


async def test_frames_of_other_sizes_are_resized_to_the_first_and_the_result_says_so(
    comfy: ComfyServer,
) -> None:
    async with connect("streamable-2025", comfy.url) as client:
        uris = await four_images(client, widths=(64, 96, 64, 128))
        result = await client.call_tool("images_to_animation", {"images": uris})
    assert not result.is_error, text(result)
    data = result.structured_content
    assert data is not None
    assert data["input_frames"]["resized"] == [1, 3]
    assert "resized to the first frame's 64x64" in data["input_frames"]["note"]
    (anim,) = data["images"]
    assert (anim["width"], anim["height"], anim["frames"]) == (64, 64, 4)


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ({"images": ["a.png"] * 65}, "64"),
        ({"images": []}, "at least 1"),
        ({"images": ["a.png"], "fps": 0}, "fps"),
        ({"images": ["a.png"], "fps": 1000}, "fps"),
        ({"images": ["a.png"], "output_path": "/tmp/clip.avi"}, ".mp4"),
    ],
    ids=["above-the-frame-cap", "no-frames", "fps-0", "fps-1000", "unknown-format"],
)
async def test_bad_input_is_a_clear_error_before_anything_is_queued(
    comfy: ComfyServer, arguments: dict[str, Any], words: str
) -> None:
    before = queue_length(comfy)
    async with connect("streamable-2025", comfy.url) as client:
        result = await client.call_tool("images_to_video", arguments)
    assert result.is_error and words in text(result), text(result)
    assert queue_length(comfy) == before


async def test_a_video_where_a_still_frame_is_needed_is_refused(comfy: ComfyServer) -> None:
    name = f"clip-{random.randrange(10**9)}.mp4"
    with av.open(str(comfy.input_dir / name), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=4)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for _ in range(2):
            frame = av.VideoFrame.from_image(Image.new("RGB", (64, 64), "red"))
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    before = queue_length(comfy)
    async with connect("streamable-2025", comfy.url) as client:
        result = await client.call_tool("images_to_video", {"images": [name]})
    assert result.is_error and "images, frame 1" in text(result) and ".png" in text(result), text(result)
    assert queue_length(comfy) == before
