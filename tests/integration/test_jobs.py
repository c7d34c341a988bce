"""The job engine inside a real ComfyUI: queueing in-process, progress by hook, precise cancellation."""

from __future__ import annotations

import json
import random
import re
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from mcp import Client
from mcp.types import CallToolResult

from testbed import comfy_api
from testbed.mcp_client import connect
from testbed.server import ComfyServer

pytestmark = pytest.mark.anyio

Progress = list[tuple[float, float | None, str | None]]


def empty_image(tag: str | None = None, prefix: str = "jobs") -> dict[str, Any]:
    """A model-free workflow; the colour varies so ComfyUI's cache never skips it."""
    colour = random.randrange(2**24)
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": colour},
        },
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}},
    }


def gen_args(steps: int = 4, size: int = 64, **extra: Any) -> dict[str, Any]:
    return {
        "prompt": "a fox in the snow",
        "width": size,
        "height": size,
        "steps": steps,
        "sampler": "euler",
        "seed": random.randrange(2**40),
        **extra,
    }


def recorder() -> tuple[Progress, Callable[[float, float | None, str | None], Awaitable[None]]]:
    seen: Progress = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    return seen, on_progress


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float = 60) -> None:
    with anyio.fail_after(timeout):
        while not await predicate():
            await anyio.sleep(0.05)


async def our_jobs(client: Client) -> dict[str, list[dict[str, Any]]]:
    status = (await client.call_tool("get_queue_status", {})).structured_content
    assert status is not None
    return {
        "running": [e for e in status["running"] if e["ours"]],
        "pending": [e for e in status["pending"] if e["ours"]],
    }


def text(result: CallToolResult) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


async def test_a_workflow_is_queued_in_process_and_its_outputs_come_back(comfy: ComfyServer) -> None:
    async with connect("streamable-2025", comfy.url) as client:
        result = await client.call_tool("debug_run_workflow", {"workflow": empty_image()})
    assert not result.is_error, text(result)
    data = result.structured_content
    assert data is not None and data["state"] == "succeeded"
    (image,) = data["images"]
    assert (comfy.output_dir / image["subfolder"] / image["filename"]).is_file()
    # ComfyUI's own history has the job's prompt: it really went through its queue.
    (prompt_id,) = data["prompt_ids"]
    entry = comfy_api.history(comfy.url, prompt_id)
    assert entry is not None and entry["status"]["status_str"] == "success"


@pytest.mark.parametrize(
    "workflow, expected",
    [
        ({"1": {"class_type": "NoSuchNode", "inputs": {}}}, "NoSuchNode"),
        (
            {
                "1": {
                    "class_type": "EmptyImage",
                    "inputs": {"width": "wide", "height": 64, "batch_size": 1, "color": 0},
                },
                "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
            },
            "width",
        ),
    ],
    ids=["unknown-node-type", "bad-input-value"],
)
async def test_comfyui_refusing_a_workflow_is_a_clear_error_and_queues_nothing(
    comfy: ComfyServer, workflow: dict[str, Any], expected: str
) -> None:
    before = comfy_api.queue(comfy.url)
    async with connect("streamable-2025", comfy.url) as client:
        result = await client.call_tool("debug_run_workflow", {"workflow": workflow})
        status = (await client.call_tool("get_queue_status", {})).structured_content
    assert result.is_error
    assert "ComfyUI refused the workflow" in text(result) and expected in text(result)
    assert status is not None and status["queue_length"] == 0
    assert comfy_api.queue(comfy.url) == before


async def test_progress_arrives_in_order_with_each_sampler_step(comfy: ComfyServer) -> None:
    seen, on_progress = recorder()
    async with connect("streamable-2025", comfy.url) as client:
        result = await client.call_tool("generate_image", gen_args(steps=4), progress_callback=on_progress)
    assert not result.is_error, text(result)
    values = [p for p, _, _ in seen]
    assert values == sorted(values) and len(set(values)) == len(values), "progress must strictly increase"
    assert all(total == 100 for _, total, _ in seen) and values[-1] <= 100
    steps = [int(m.group(1)) for _, _, msg in seen if msg and (m := re.search(r"step (\d+)/4", msg))]
    assert steps == [1, 2, 3, 4]
    assert any("KSampler" in (msg or "") for _, _, msg in seen)


async def test_comfyuis_own_websocket_clients_still_get_their_events(comfy: ComfyServer) -> None:
    client_id = uuid.uuid4().hex
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{comfy.url}/ws?clientId={client_id}") as ws:
        prompt_id = comfy_api.submit(comfy.url, empty_image(), client_id=client_id)
        async with connect("sse", comfy.url) as client:  # an MCP call in between
            assert not (await client.call_tool("debug_run_workflow", {"workflow": empty_image()})).is_error
        events: list[str] = []
        with anyio.fail_after(30):
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                event = json.loads(msg.data)
                events.append(event["type"])
                data = event.get("data", {})
                if (
                    event["type"] == "executing"
                    and data.get("node") is None
                    and data.get("prompt_id") == prompt_id
                ):
                    break
    assert "execution_start" in events and "executed" in events and "status" in events


async def test_cancelling_a_pending_job_means_it_never_runs(comfy: ComfyServer) -> None:
    async with connect("streamable-2025", comfy.url) as a, connect("streamable-2025", comfy.url) as b:
        async with anyio.create_task_group() as tg:
            results: dict[str, CallToolResult] = {}

            async def call(name: str, client: Client, args: dict[str, Any]) -> None:
                results[name] = await client.call_tool("generate_image", args)

            tg.start_soon(call, "long", a, gen_args(steps=60, size=128))

            async def long_running() -> bool:
                return bool((await our_jobs(b))["running"])

            await wait_for(long_running)
            tg.start_soon(call, "pending", b, gen_args(steps=2))

            async def one_pending() -> bool:
                return bool((await our_jobs(b))["pending"])

            await wait_for(one_pending)
            # Each session sees the id of its own job only; b cancels both (an id is the capability).
            pending = (await our_jobs(b))["pending"][0]
            pending_id, pending_prompt = pending["job_id"], pending["prompt_id"]
            running_id = (await our_jobs(a))["running"][0]["job_id"]
            outcome = (await b.call_tool("cancel_job", {"job_id": pending_id})).structured_content
            assert outcome is not None and outcome["outcome"] == "removed" and outcome["state"] == "cancelled"
            stopped = (await b.call_tool("cancel_job", {"job_id": running_id})).structured_content
            assert stopped is not None and stopped["outcome"] == "interrupted"
        assert results["pending"].is_error and "cancelled" in text(results["pending"])
        assert results["long"].is_error and "cancelled" in text(results["long"])
        # The pending one never reached ComfyUI's worker: no history entry at all.
        assert comfy_api.history(comfy.url, pending_prompt) is None
        # The queue moves on: the next call works.
        after = await a.call_tool("generate_image", gen_args(steps=2))
        assert not after.is_error, text(after)


def foreign_txt2img(model: str, steps: int, size: int, prefix: str) -> dict[str, Any]:
    """A slow txt2img workflow as another ComfyUI client would queue it (the shipped graph, no bridge)."""
    spec = json.loads((Path(__file__).parents[2] / "workflows" / "tools" / "txt2img.json").read_text())
    prompt = {node_id: node for node_id, node in spec.items() if not node_id.startswith("_")}
    prompt["4"]["inputs"]["ckpt_name"] = model
    prompt["3"]["inputs"].update(steps=steps, seed=random.randrange(2**40))
    prompt["5"]["inputs"].update(width=size, height=size)
    prompt["9"]["inputs"]["filename_prefix"] = prefix
    return prompt


async def test_cancel_never_touches_a_prompt_someone_else_queued(comfy: ComfyServer) -> None:
    """Cancelling OUR job while another client's prompt runs removes ours only: theirs finishes."""
    async with connect("streamable-2025", comfy.url) as client:
        models = (await client.call_tool("list_models", {})).structured_content
        assert models is not None
        theirs = comfy_api.submit(comfy.url, foreign_txt2img(models["names"][0], 60, 128, "theirs"))

        async def theirs_running() -> bool:
            return any(item[1] == theirs for item in comfy_api.queue(comfy.url)["queue_running"])

        await wait_for(theirs_running)
        results: list[CallToolResult] = []
        async with anyio.create_task_group() as tg:

            async def call() -> None:
                results.append(await client.call_tool("generate_image", gen_args(steps=2)))

            tg.start_soon(call)

            async def ours_pending() -> bool:
                return bool((await our_jobs(client))["pending"])

            await wait_for(ours_pending)
            ours = (await our_jobs(client))["pending"][0]
            assert await theirs_running()  # theirs is the prompt ComfyUI is running now
            outcome = (await client.call_tool("cancel_job", {"job_id": ours["job_id"]})).structured_content
            assert outcome is not None and (outcome["outcome"], outcome["state"]) == ("removed", "cancelled")
            # A prompt id queued by someone else is no job id here: nothing is cancelled.
            refused = await client.call_tool("cancel_job", {"job_id": theirs})
            assert refused.is_error and "Unknown job id" in text(refused)
        (result,) = results
        assert result.is_error and "cancelled" in text(result)
    entry = comfy_api.wait(comfy.url, theirs)
    assert entry["status"]["status_str"] == "success"
    assert "execution_interrupted" not in [event for event, _ in entry["status"]["messages"]]
    assert comfy_api.output_images(entry)  # theirs ran to the end and saved its image
    assert comfy_api.history(comfy.url, ours["prompt_id"]) is None  # ours never ran


async def test_an_interrupt_from_comfyui_itself_is_reported_as_interrupted(comfy: ComfyServer) -> None:
    async with connect("streamable-2025", comfy.url) as client:
        seen, on_progress = recorder()
        async with anyio.create_task_group() as tg:
            box: list[CallToolResult] = []

            async def call() -> None:
                box.append(
                    await client.call_tool(
                        "generate_image", gen_args(steps=60, size=128), progress_callback=on_progress
                    )
                )

            tg.start_soon(call)
            await wait_for(lambda: _has_step(seen))
            async with aiohttp.ClientSession() as http:
                await http.post(f"{comfy.url}/interrupt", json={})
        (result,) = box
        assert result.is_error and "interrupted" in text(result)
        again = await client.call_tool("generate_image", gen_args(steps=2))
        assert not again.is_error, text(again)


async def _has_step(seen: Progress) -> bool:
    return any("step" in (msg or "") for _, _, msg in seen)


async def test_a_node_that_raises_gives_comfyuis_error_type_and_message(comfy: ComfyServer) -> None:
    # SaveImage refuses to write outside the output folder: it raises while executing.
    workflow = empty_image(prefix="../outside")
    async with connect("streamable-2025", comfy.url) as client:
        result = await client.call_tool("debug_run_workflow", {"workflow": workflow})
        assert result.is_error
        assert "SaveImage" in text(result) and "output folder" in text(result)
        ok = await client.call_tool("debug_run_workflow", {"workflow": empty_image()})
        assert not ok.is_error, text(ok)
    assert not list(comfy.base_dir.glob("outside*"))


async def test_mcp_cancellation_of_a_running_call_cancels_its_job(comfy: ComfyServer) -> None:
    async with (
        connect("streamable-2025", comfy.url) as client,
        connect("streamable-2025", comfy.url) as watcher,
    ):
        seen, on_progress = recorder()
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:

                async def call() -> None:
                    await client.call_tool(
                        "generate_image", gen_args(steps=60, size=128), progress_callback=on_progress
                    )

                tg.start_soon(call)
                await wait_for(lambda: _has_step(seen))
                job_id = (await our_jobs(client))["running"][0]["job_id"]
                scope.cancel()  # the SDK client sends notifications/cancelled
        assert scope.cancelled_caught

        async def job_finished() -> bool:
            job = await watcher.call_tool("get_job", {"job_id": job_id})
            return "cancelled" in text(job)

        await wait_for(job_finished)
        after = await watcher.call_tool("generate_image", gen_args(steps=2))
        assert not after.is_error, text(after)


async def test_twenty_concurrent_calls_from_five_sessions_each_get_only_their_own(comfy: ComfyServer) -> None:
    ways = ["streamable-2025", "streamable-2026", "sse", "streamable-2025", "streamable-2026"]
    results: dict[int, tuple[CallToolResult, Progress, int]] = {}

    async def session(index: int, kind: str) -> None:
        async with connect(kind, comfy.url) as client, anyio.create_task_group() as tg:
            for j in range(4):
                n = index * 4 + j
                tg.start_soon(one_call, client, n)

    async def one_call(client: Client, n: int) -> None:
        steps = 1 + n % 4
        seen, on_progress = recorder()
        result = await client.call_tool(
            "generate_image", gen_args(steps=steps, seed=1000 + n), progress_callback=on_progress
        )
        results[n] = (result, seen, steps)

    async with anyio.create_task_group() as tg:
        for i, kind in enumerate(ways):
            tg.start_soon(session, i, kind)
    assert len(results) == 20
    job_ids = set()
    for n, (result, seen, steps) in results.items():
        assert not result.is_error, text(result)
        data = result.structured_content
        assert data is not None and data["seed"] == 1000 + n
        job_ids.add(data["job_id"])
        totals = {m.group(1) for _, _, msg in seen if msg and (m := re.search(r"step \d+/(\d+)", msg))}
        assert totals <= {str(steps)}, f"call {n} saw another call's progress: {totals}"
    assert len(job_ids) == 20


async def test_past_the_wait_bound_a_call_returns_its_job_and_wait_job_finishes_the_story(
    comfy: ComfyServer, comfy_factory: Callable[..., ComfyServer]
) -> None:
    env = {"COMFYUI_MCP_CALL_WAIT_S": "1", "COMFYUI_MCP_DEFAULT_STEPS": "3", "COMFYUI_MCP_MAX_SIDE": "1024"}
    server = comfy_factory(comfy.version, env=env)
    async with connect("streamable-2026", server.url) as client:
        # Settings from the environment reach the advertised schema too.
        tools = {t.name: t for t in (await client.list_tools()).tools}
        width = tools["generate_image"].input_schema["properties"]["width"]
        assert width["maximum"] == 1024
        assert tools["generate_image"].input_schema["properties"]["steps"]["default"] == 3
        first = await client.call_tool("generate_image", gen_args(steps=20, size=128))
        assert not first.is_error, text(first)
        pending = first.structured_content
        assert pending is not None and pending["state"] in ("queued", "running")
        assert "wait_job" in text(first)
        with anyio.fail_after(120):
            while True:
                waited = await client.call_tool("wait_job", {"job_id": pending["job_id"], "timeout_s": 30})
                assert not waited.is_error, text(waited)
                data = waited.structured_content
                assert data is not None
                if data["state"] == "succeeded":
                    break
        (image,) = data["images"]
        assert (image["width"], image["height"]) == (128, 128)
        assert (server.output_dir / image["subfolder"] / image["filename"]).is_file()
