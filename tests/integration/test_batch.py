"""generate_batch through an MCP client on a real ComfyUI: order, parameters, budget, cancellation."""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import pytest
from _mcp_clients import ok, text
from mcp.types import ImageContent, ResourceLink
from PIL import Image

from testbed import comfy_api
from testbed.mcp_client import connect
from testbed.sample_workflows import empty_image
from testbed.server import ComfyServer

pytestmark = pytest.mark.anyio


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float = 60) -> None:
    with anyio.fail_after(timeout):
        while not await predicate():
            await anyio.sleep(0.05)


async def test_four_prompts_by_two_seeds_give_eight_files_in_order(
    comfy: ComfyServer, tmp_path: Path
) -> None:
    prompts = ["a red fox", "a blue whale", "a green frog", "a yellow bird"]
    seed = random.randrange(2**40)
    batch = {
        "prompts": prompts,
        "variations": 2,
        "seed": seed,
        "arguments": {"width": 64, "height": 64, "steps": 1, "sampler": "euler"},
        "output_path": "batch-{index}-{seed}.png",
    }
    async with connect("streamable-2026", comfy.url) as client:
        data = ok(await client.call_tool("generate_batch", batch))
        over = await client.call_tool("generate_batch", {**batch, "prompts": prompts * 3})  # 24 > 16
        queue = comfy.get_json("/queue")
    items = data["items"]
    assert [(i["index"], i["prompt"], i["seed"]) for i in items] == [
        (n * 2 + v + 1, p, seed + v) for n, p in enumerate(prompts) for v in (0, 1)
    ]
    assert all(i["state"] == "succeeded" and i["parameters"]["steps"] == 1 for i in items), [
        (i["state"], i.get("error"), i.get("parameters", {}).get("steps")) for i in items
    ]
    files = [Path(i["images"][0]["saved_path"]) for i in items]
    assert [f.name for f in files] == [f"batch-{i['index']}-{i['seed']}.png" for i in items]
    pixels = set()
    for f in files:
        with Image.open(f) as im:
            pixels.add(im.tobytes())
    assert len(pixels) == 8, "two items made the same image"
    assert over.is_error and "24 items; at most 16" in text(over)
    assert queue == {"queue_running": [], "queue_pending": []}


@pytest.mark.timeout(900)  # sixteen 512 px images on a shared 2-core CPU
async def test_sixteen_512px_items_stay_under_the_message_budget(comfy: ComfyServer) -> None:
    batch = {
        "prompts": ["a castle", "a forest", "a river", "a mountain"],
        "variations": 4,
        "arguments": {"width": 512, "height": 512, "steps": 1, "sampler": "euler"},
    }
    async with connect("streamable-2025", comfy.url) as client:
        result = await client.call_tool("generate_batch", batch)
    data = ok(result)
    size = len(json.dumps(result.model_dump(mode="json", by_alias=True, exclude_none=True)))
    print(
        f"\n16-image batch result: {size} bytes on ComfyUI {comfy.version}"
    )  # the figure for the issue note
    assert data["count"] == 16 and data["failed"] == 0
    assert len([b for b in result.content if isinstance(b, ResourceLink)]) == 16
    previews = [b for b in result.content if isinstance(b, ImageContent)]
    assert len(previews) == (1 if data["contact_sheet"] else 16)
    assert size < 1024 * 1024 + 64 * 1024  # the inline budget plus the links and structured content


async def test_cancelling_a_batch_removes_its_prompts_and_nobody_elses(comfy: ComfyServer) -> None:
    batch = {
        "prompts": ["a storm"],
        "variations": 5,
        "arguments": {"width": 128, "height": 128, "steps": 40, "sampler": "euler"},
    }
    progress: list[str] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    theirs: list[str] = []
    async with (
        connect("streamable-2025", comfy.url) as client,
        connect("streamable-2025", comfy.url) as other,
    ):
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:

                async def call() -> None:
                    await client.call_tool("generate_batch", batch, progress_callback=on_progress)

                tg.start_soon(call)
                await wait_for(lambda: _stepping(progress))
                theirs.append(comfy_api.submit(comfy.url, empty_image(prefix="theirs")))  # after ours
                status = (await client.call_tool("get_queue_status", {})).structured_content
                assert status is not None
                mine = [e["job_id"] for e in status["running"] + status["pending"] if e.get("mine")]
                assert len(mine) == 5
                scope.cancel()  # the SDK client sends notifications/cancelled

        async def all_cancelled() -> bool:
            states = [(await other.call_tool("get_job", {"job_id": j})).is_error for j in mine]
            return all(states)  # a cancelled job's result is an error saying so

        await wait_for(all_cancelled)
    assert "item 1 of 5" in progress[-1]
    entry = comfy_api.wait(comfy.url, theirs[0])
    assert entry["status"]["status_str"] == "success"
    queue = comfy.get_json("/queue")
    assert queue == {"queue_running": [], "queue_pending": []}


async def _stepping(progress: list[str]) -> bool:
    return any("step" in message for message in progress)
