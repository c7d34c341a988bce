"""Tools as data and delivery at job end, against a real ComfyUI started with a tool folder, a 1 s call
wait and output roots on small file systems (a full one, a read-only one) where this machine can mount them.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp.types import CallToolResult, ImageContent, ResourceLink
from PIL import Image

from testbed.mcp_client import connect
from testbed.server import VERSIONS, ComfyServer
from testbed.tiny_models import CHECKPOINT_NAME

pytestmark = pytest.mark.anyio

# A tool by spec alone: txt2img at a fixed 64x64 with three inputs, no Python written for it.
SQUARE_SPEC: dict[str, Any] = {
    "_bridge": {
        "tool": "tiny_square",
        "title": "Tiny square",
        "description": "Paint a 64x64 picture of the prompt with the tiny checkpoint.",
        "inputs": {
            "prompt": {
                "kind": "text",
                "node": "6",
                "input": "text",
                "required": True,
                "description": "What to show.",
            },
            "seed": {
                "kind": "seed",
                "node": "3",
                "input": "seed",
                "description": "Seed; random when omitted.",
            },
            "steps": {"kind": "int", "node": "3", "input": "steps", "description": "Sampling steps."},
        },
    },
    "3": {
        "class_type": "KSampler",
        "inputs": {
            "model": ["4", 0],
            "positive": ["6", 0],
            "negative": ["7", 0],
            "latent_image": ["5", 0],
            "seed": 0,
            "steps": 2,
            "cfg": 7.0,
            "sampler_name": "euler",
            "scheduler": "normal",
            "denoise": 1.0,
        },
    },
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CHECKPOINT_NAME}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "spec"}},
}


# A model-free animation: four differently coloured frames saved as one animated WebP. (An EmptyImage
# batch of identical frames is stored by the WebP encoder as a single frame, so the frames differ.)
ANIMATION_SPEC: dict[str, Any] = {
    "_bridge": {
        "tool": "flat_animation",
        "description": "A short animated WebP of four flat frames (model-free).",
        "inputs": {
            "color": {"kind": "int", "node": "1", "input": "color", "description": "First frame's colour."},
            "fps": {"kind": "float", "node": "9", "input": "fps", "description": "Frames per second."},
        },
    },
    **{
        str(n): {
            "class_type": "EmptyImage",
            "inputs": {"width": 64, "height": 48, "batch_size": 1, "color": c},
        }
        for n, c in ((1, 0xFF0000), (2, 0x00FF00), (3, 0x0000FF), (4, 0xFFFF00))
    },
    "5": {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0], "image2": ["2", 0]}},
    "6": {"class_type": "ImageBatch", "inputs": {"image1": ["3", 0], "image2": ["4", 0]}},
    "7": {"class_type": "ImageBatch", "inputs": {"image1": ["5", 0], "image2": ["6", 0]}},
    "9": {
        "class_type": "SaveAnimatedWEBP",
        "inputs": {
            "images": ["7", 0],
            "filename_prefix": "anim",
            "fps": 6.0,
            "lossless": False,
            "quality": 80,
            "method": "default",
        },
    },
}


FOUR_FRAMES = {k: v for k, v in ANIMATION_SPEC.items() if k in ("1", "2", "3", "4", "5", "6", "7")}  # "7"

# The same four frames as an MP4 through ComfyUI's CreateVideo and SaveVideo.
VIDEO_SPEC: dict[str, Any] = {
    "_bridge": {
        "tool": "flat_video",
        "description": "A short MP4 of four flat frames (model-free).",
        "inputs": {
            "color": {"kind": "int", "node": "1", "input": "color", "description": "First frame's colour."},
        },
    },
    **FOUR_FRAMES,
    "8": {"class_type": "CreateVideo", "inputs": {"images": ["7", 0], "fps": 8.0}},
    "9": {
        "class_type": "SaveVideo",
        "inputs": {"video": ["8", 0], "filename_prefix": "clip", "format": "mp4", "codec": "h264"},
    },
}


def _mount_tmpfs(where: Path, *options: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", ",".join(("size=64k", *options)), "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


@contextlib.contextmanager
def small_filesystems(base: Path) -> Iterator[dict[str, Path | None]]:
    """A 64 KiB tmpfs (to fill) and a read-only tmpfs, or None where this machine cannot mount."""
    full, readonly = base / "full", base / "readonly"
    mounted = {
        "full": full if _mount_tmpfs(full) else None,
        "readonly": readonly if _mount_tmpfs(readonly, "ro") else None,
    }
    try:
        yield mounted
    finally:
        for path in mounted.values():
            if path is not None:
                subprocess.run(["umount", str(path)], capture_output=True, check=False)


@pytest.fixture(scope="module", params=VERSIONS, ids=[f"comfyui-{v}" for v in VERSIONS])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("delivery")
    tools = base / "tools"
    tools.mkdir()
    (tools / "tiny_square.json").write_text(json.dumps(SQUARE_SPEC))
    (tools / "flat_animation.json").write_text(json.dumps(ANIMATION_SPEC))
    (tools / "flat_video.json").write_text(json.dumps(VIDEO_SPEC))
    with small_filesystems(base) as mounts:
        roots = [str(p) for p in mounts.values() if p is not None]
        env = {
            "COMFYUI_MCP_DEBUG_TOOLS": "1",
            "COMFYUI_MCP_CALL_WAIT_S": "1",
            "COMFYUI_MCP_TOOL_FOLDERS": str(tools),
            "COMFYUI_MCP_OUTPUT_ROOTS": ",".join(roots),
        }
        comfy = ComfyServer(request.param, env=env, test_nodes=["fake_video_combine"])
        comfy.start()
        try:
            yield {"comfy": comfy, **mounts}
        finally:
            comfy.stop()


def text(result: CallToolResult) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


def wait_in_history(comfy: ComfyServer, prompt_id: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = comfy.get_json(f"/history/{prompt_id}")
        if isinstance(entry, dict) and prompt_id in entry:
            return entry[prompt_id]  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"prompt {prompt_id} did not finish in {timeout} s")


async def finished(client: Any, result: CallToolResult) -> CallToolResult:
    """Follow a call that handed back its job (calls wait 1 s on this server) to its result."""
    while result.structured_content and result.structured_content.get("state") in ("queued", "running"):
        job_id = result.structured_content["job_id"]
        result = await client.call_tool("wait_job", {"job_id": job_id, "timeout_s": 60})
    return result


def linked(result: CallToolResult) -> ResourceLink:
    (link,) = [b for b in result.content if isinstance(b, ResourceLink)]
    return link


def still_poster_size(result: CallToolResult) -> tuple[int, int]:
    """The size of the result's one preview, checked to be a still WebP (a poster frame)."""
    (poster,) = [b for b in result.content if isinstance(b, ImageContent)]
    with Image.open(io.BytesIO(base64.b64decode(poster.data))) as im:
        assert im.format == "WEBP" and getattr(im, "n_frames", 1) == 1
        return im.size


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


async def test_a_tool_added_by_spec_alone_is_listed_with_its_derived_schema_and_runs(
    server: dict[str, Any],
) -> None:
    comfy: ComfyServer = server["comfy"]
    async with connect("streamable-2025", comfy.url) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
        tool = listed["tiny_square"]
        assert tool.description == SQUARE_SPEC["_bridge"]["description"] and tool.title == "Tiny square"
        schema = tool.input_schema
        assert list(schema["properties"]) == ["prompt", "seed", "steps", "output_path", "overwrite"]
        assert schema["required"] == ["prompt"] and schema["additionalProperties"] is False
        steps = schema["properties"]["steps"]
        # No bounds in the spec: KSampler's own definition gives them; the workflow's value is the default.
        assert (steps["minimum"], steps["maximum"], steps["default"]) == (1, 10000, 2)
        seed = random.randrange(2**40)
        result = await finished(
            client,
            await client.call_tool("tiny_square", {"prompt": "a red square", "seed": seed, "steps": 2}),
        )
        assert not result.is_error, text(result)
        data = result.structured_content
        assert data is not None and data["seed"] == seed and data["steps"] == 2
        (image,) = data["images"]
        with Image.open(comfy.output_dir / image["subfolder"] / image["filename"]) as im:
            assert im.size == (64, 64)
        assert [b for b in result.content if isinstance(b, ImageContent)]
        refused = await client.call_tool("tiny_square", {"prompt": "x", "steps": 0})
        assert refused.is_error and "steps" in text(refused) and "greater than or equal to 1" in text(refused)


async def test_output_path_is_written_when_the_job_ends_though_the_client_left(
    server: dict[str, Any],
) -> None:
    comfy: ComfyServer = server["comfy"]
    target = comfy.output_dir / "left" / f"late-{random.randrange(10**9)}.png"
    arguments = {
        "prompt": "a slow lighthouse",
        "width": 64,
        "height": 64,
        "steps": 120,
        "sampler": "euler",
        "seed": random.randrange(2**40),
        "output_path": str(target),
    }
    async with connect("streamable-2026", comfy.url) as client:
        handle = await client.call_tool("generate_image", arguments)
    # The call waited 1 s and handed back the job; the client is gone and never polls.
    assert not handle.is_error, text(handle)
    assert handle.structured_content is not None and handle.structured_content["state"] in (
        "queued",
        "running",
    )
    job_id = handle.structured_content["job_id"]
    assert not target.exists()
    (prompt_id,) = handle.structured_content["prompt_ids"]
    assert prompt_id != job_id
    entry = wait_in_history(comfy, prompt_id)
    assert entry["status"]["status_str"] == "success"
    wait_for(target.exists)
    with Image.open(target) as im:
        im.load()  # complete, not a partial file
        assert im.size == (64, 64)


@pytest.mark.parametrize("which", ["full", "readonly"])
async def test_a_failed_output_write_is_an_error_leaves_no_temp_file_and_is_logged_once(
    server: dict[str, Any], which: str
) -> None:
    comfy: ComfyServer = server["comfy"]
    folder: Path | None = server[which]
    if folder is None:
        pytest.skip(f"this machine cannot mount a {which} tmpfs (mount needs CAP_SYS_ADMIN)")
    if which == "full":
        with contextlib.suppress(OSError), (folder / "filler").open("wb") as fh:
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
    before = set(folder.iterdir())
    target = folder / f"out-{random.randrange(10**9)}.png"
    arguments = {"prompt": "no room", "width": 64, "height": 64, "steps": 2, "sampler": "euler"}
    async with connect("streamable-2025", comfy.url) as client:
        handle = await client.call_tool(
            "generate_image", {**arguments, "seed": random.randrange(2**40), "output_path": str(target)}
        )
        assert handle.structured_content is not None
        job_id = handle.structured_content["job_id"]
        result = await finished(client, handle)
    assert result.is_error, text(result)
    message = text(result)
    assert "could not write output_path" in message and "/output/mcp/" in message
    links = [b for b in result.content if isinstance(b, ResourceLink)]
    assert links and "/output/mcp/" in str(links[0].uri)
    assert set(folder.iterdir()) == before  # no file, no temporary file
    wait_for(lambda: job_id in comfy.log_text())
    assert sum(job_id in line and "could not write" in line for line in comfy.log_text().splitlines()) == 1


async def test_an_animated_webp_comes_back_with_a_poster_a_typed_link_and_every_frame_saved(
    server: dict[str, Any],
) -> None:
    comfy: ComfyServer = server["comfy"]
    target = comfy.output_dir / "clips" / f"anim-{random.randrange(10**9)}.webp"
    color = random.randrange(2**24)
    async with connect("streamable-2025", comfy.url) as client:
        arguments = {"color": color, "fps": 4.0, "output_path": str(target)}
        result = await finished(client, await client.call_tool("flat_animation", arguments))
    assert not result.is_error, text(result)
    link = linked(result)
    assert link.mime_type == "image/webp" and str(link.uri).endswith(".webp")
    assert still_poster_size(result) == (64, 48)
    (produced,) = result.structured_content["images"]  # type: ignore[index]
    assert (produced["kind"], produced["frames"], produced["fps"]) == ("animation", 4, 4.0)
    with Image.open(target) as im:
        assert im.format == "WEBP" and im.n_frames == 4 and im.size == (64, 48)


async def test_an_mp4_output_path_is_comfyuis_file_byte_for_byte_and_a_gif_is_converted_frame_for_frame(
    server: dict[str, Any],
) -> None:
    comfy: ComfyServer = server["comfy"]
    folder = comfy.output_dir / "clips"
    mp4, gif = folder / f"clip-{random.randrange(10**9)}.mp4", folder / f"clip-{random.randrange(10**9)}.gif"
    async with connect("streamable-2025", comfy.url) as client:
        produced = []
        for target in (mp4, gif):
            arguments = {"color": random.randrange(2**24), "output_path": str(target)}
            result = await finished(client, await client.call_tool("flat_video", arguments))
            assert not result.is_error, text(result)
            (entry,) = result.structured_content["images"]  # type: ignore[index]
            assert (entry["kind"], entry["mime_type"], entry["frames"]) == ("video", "video/mp4", 4)
            produced.append(comfy.output_dir / entry["subfolder"] / entry["filename"])
    assert mp4.read_bytes() == produced[0].read_bytes()  # written as produced, not re-encoded
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames == 4 and im.size == (64, 48)


async def test_a_custom_node_reporting_gifs_like_video_combine_gives_a_video_artifact(
    server: dict[str, Any],
) -> None:
    comfy: ComfyServer = server["comfy"]
    workflow = {
        **FOUR_FRAMES,
        "9": {
            "class_type": "FakeVideoCombine",
            "inputs": {
                "images": ["7", 0],
                "frame_rate": 8.0,
                "filename_prefix": f"combine{random.randrange(10**9)}",
            },
        },
    }
    workflow["1"] = {**workflow["1"], "inputs": {**workflow["1"]["inputs"], "color": random.randrange(2**24)}}
    async with connect("streamable-2025", comfy.url) as client:
        result = await finished(client, await client.call_tool("debug_run_workflow", {"workflow": workflow}))
    assert not result.is_error, text(result)
    (entry,) = result.structured_content["images"]  # type: ignore[index]
    assert (entry["kind"], entry["mime_type"]) == ("video", "video/mp4")
    assert (entry["width"], entry["height"], entry["frames"], entry["fps"]) == (64, 48, 4, 8.0)
    link = linked(result)
    assert link.mime_type == "video/mp4" and str(link.uri) == entry["uri"]
    assert still_poster_size(result) == (64, 48)
